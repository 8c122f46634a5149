//! The demo data the local stack seeds (`make dev`) and the tests start from: a catalog of two sellers,
//! three warehouses and their stock.

pub mod catalog;
pub mod inventory;
pub mod promotions;
pub mod shipping;
