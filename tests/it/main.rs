//! spotcost's integration tests: the real client, extractors and lake against the in-process
//! Spot API simulator, checked against the simulator's ground truth.

mod browser;
mod cli;
mod client_faults;
mod deploy;
mod extract_end_to_end;
mod focus;
mod forecast;
mod hostile_decoding;
mod hostile_names;
mod marts_small;
mod models;
mod nightly;
mod reliability;
mod schema_doc;
mod secrets;
mod support;
