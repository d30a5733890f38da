//! The one integration-test binary: each test starts a real server on port 0 with a fresh
//! database and drives it over HTTP like a browser and a relying party would.

mod authorize;
mod cli;
mod flow;
mod helpers;
mod management;
mod relying_party;
mod rules;
mod token;
mod userinfo;
