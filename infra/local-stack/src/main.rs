//! The local stack: runs the whole system described by template.yaml on one machine.

mod aws_proxy;
mod gateway;
mod lambda;
mod moto;
mod plan;
mod pollers;
mod provision;
mod state;
mod template;
mod users;

fn main() {}
