//! Collection: which tenants are in scope ([`discovery`], filtered and
//! sharded by [`scope`]), one file per collector behind one small trait
//! ([`collector`]), and the engine that runs discovery and every collector on
//! their schedules, keeps each tenant's latest results and publishes a new
//! snapshot after each run ([`engine`]).

pub mod collector;
pub mod discovery;
pub mod engine;
mod results;
pub mod scope;
