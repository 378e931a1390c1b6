//! spotcost: FinOps cost analytics for Spot by NetApp, as a library so that tests drive it in-process.
pub mod alerts;
pub mod check;
pub mod cli;
pub mod config;
pub mod export;
pub mod extract;
pub mod history;
pub mod lake;
pub mod models;
pub mod pipeline;
pub mod progress;
pub mod report;
pub mod schedule;
pub mod shipped;
pub mod sim;
pub mod spot;
