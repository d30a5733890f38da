use serde_json::json;

use super::*;

fn round_trip(text: &str) -> String {
    let v: Value = from_str(text).unwrap();
    let mut out = Vec::new();
    write_value(&mut out, &v);
    String::from_utf8(out).unwrap()
}

#[test]
fn values_read_and_write_as_serde_json_does() {
    for text in [
        r#"{"a":[1,-2,3.5,1e300,-0.0,18446744073709551615,-9223372036854775808],"b":{"c":null,"d":true,"e":false}}"#,
        r#""\u00e9\ud83d\ude00 \" \\ \/ \b\f\n\r\t \u0001""#,
        r#"[[],{},"",0,123456789012345678901234567890]"#,
        r#"{"a key longer than eight":"a value longer than eight, then \"quoted\" é😀","k":"v"}"#,
        r#"["12345678\n","1234567\u0041","\u00e9abcdefghij","abcdefghijklmnopqrstuvwxyz"]"#,
    ] {
        let expected: Value = serde_json::from_str(text).unwrap();
        assert_eq!(from_str::<Value>(text).unwrap(), expected, "{text}");
        assert_eq!(
            round_trip(text),
            serde_json::to_string(&expected).unwrap(),
            "{text}"
        );
    }
    assert_eq!(
        from_str::<Value>(" { \"k\" : [ 1 , 2 ] } ").unwrap(),
        json!({"k": [1, 2]})
    );
}

#[test]
fn bad_text_is_an_error_not_a_panic() {
    for text in [
        "",
        "{",
        "[1,",
        "{\"a\"}",
        "{\"a\":}",
        "\"abc",
        "\"\\x\"",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "01",
        "1.",
        "1e",
        "-",
        "tru",
        "nul",
        "[1 2]",
        "{\"a\":1,}",
        "\"a\u{1}b\"",
        "1 2",
        "\"\\u12\"",
    ] {
        assert!(from_str::<Value>(text).is_err(), "{text:?} was accepted");
    }
    // An exponent larger than any cap still counts against the digits before it.
    let text = format!("0.{}1e{}", "0".repeat(2000), 2001);
    assert_eq!(from_str::<Value>(&text).unwrap(), serde_json::json!(1.0));
    let deep = "[".repeat(1000) + &"]".repeat(1000);
    assert_eq!(
        from_str::<Value>(&deep).unwrap_err().what(),
        "at most 128 levels of nesting"
    );
}

#[test]
fn skipping_returns_the_text_of_one_value() {
    let text = r#"{"a":{"x":"}]\"","y":[1,{"z":2}]},"b":12.5e3 ,"c":"s","d":true}"#;
    let mut seen = Vec::new();
    from_str_with(text, |r, key| {
        seen.push((key.to_owned(), r.skip()?.to_owned()));
        Ok(())
    });
    assert_eq!(
        seen,
        [
            ("a".into(), r#"{"x":"}]\"","y":[1,{"z":2}]}"#.into()),
            ("b".into(), "12.5e3".into()),
            ("c".into(), r#""s""#.into()),
            ("d".into(), "true".into()),
        ]
    );
}

fn from_str_with(text: &str, f: impl FnMut(&mut Reader<'_>, &str) -> Result<(), Stop>) {
    let mut r = Reader::new(text);
    r.object(f).unwrap();
    r.finish().unwrap();
}

#[test]
fn skipping_an_unfinished_value_is_an_error_naming_it() {
    for (text, what) in [
        (r#"{"a":{"x":[1,2}"#, "the end of an object or array"),
        (r#"{"a":["x"#, "the end of a string"),
        (r#"{"a":"abcdefghijklmnop\""#, "the end of a string"),
        (r#"{"a":}"#, "a value"),
        (r#"{"a":"#, "a value, not the end of the input"),
    ] {
        let mut r = Reader::new(text);
        let e = r.object(|r, _| r.skip().map(|_| ())).unwrap_err();
        assert_eq!((e, r.failure.what()), (Stop, what), "{text}");
    }
}

#[test]
fn the_eight_byte_scan_finds_the_first_byte_to_escape_at_any_position() {
    use super::scan::special_byte;
    for special in [b'"', b'\\', 0x00, 0x1f] {
        for at in 0..20 {
            // Multi-byte characters and DEL before it are never flagged.
            let mut bytes = "é😀\u{7f}".repeat(at).into_bytes();
            bytes.truncate(at);
            bytes.push(special);
            bytes.extend_from_slice(b"\"tail after it");
            assert_eq!(special_byte(&bytes, 0), at, "{special:#x} at {at}");
        }
    }
    let clean = "é😀\u{7f} no byte to escape, longer than eight".as_bytes();
    assert_eq!(special_byte(clean, 0), clean.len());
    assert_eq!(special_byte(b"ab\"", 3), 3);
}

#[test]
fn skipping_stops_a_number_at_a_delimiter_and_the_object_then_fails() {
    // Not JSON: the value after `1` is refused where it starts, not when it is decoded.
    let mut r = Reader::new(r#"{"a":1{"b":2}}"#);
    let e = r.object(|r, _| r.skip().map(|_| ()));
    assert_eq!(
        (e, r.failure.what(), r.failure.offset()),
        (Err(Stop), "a comma or the end of the object", 6)
    );
}

#[test]
fn strings_escape_as_serde_json_does() {
    let every_control: String = (0u8..0x20).map(char::from).collect();
    let long = format!("abcdefgh\"ijklmnopqrstuvw\\xyz{every_control}é😀-{every_control}end");
    for s in [
        "plain",
        "q\"b\\s/",
        "\n\r\t\u{8}\u{c}\u{1}\u{1f}",
        "é😀",
        "eight ch",
        "sixteen characte",
        "a longer string without anything to escape in it, é😀 included",
        &long,
    ] {
        let mut out = Vec::new();
        write_str(&mut out, s);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            serde_json::to_string(s).unwrap()
        );
    }
}
