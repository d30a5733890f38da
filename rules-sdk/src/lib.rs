//! Wardstone rules SDK (filled in by the rules issue).
