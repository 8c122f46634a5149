//! Flash sales in memory, applying the same conditions as the DynamoDB adapter: handler tests and sample
//! events run against it. Not for production (one process only).

use chrono::{DateTime, Duration, Utc};
use commerce_app::ports::{
    EntryOutcome, FlashEntryWriter, FlashHolds, FlashSaleCreator, FlashSaleReader, FlashTicketStore, WaitingRoom,
};
use commerce_domain::error::{DomainError, Result};
use commerce_domain::flash_sale::{EntryMessage, FlashSale, Gate, Ticket, TicketStatus};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

#[derive(Debug, Default)]
struct State {
    sales: HashMap<String, FlashSale>,
    gates: HashMap<String, Gate>,
    shards: HashMap<(String, u32), i64>,
    sequences: HashMap<(String, u32), u64>,
    customers: HashMap<(String, String), (i64, i64)>,
    tickets: HashMap<String, Ticket>,
    available: HashMap<(String, String), i64>,
    queued: Vec<EntryMessage>,
}

fn insert_sale(state: &mut State, sale: FlashSale) {
    for (k, units) in sale.shard_units().into_iter().enumerate() {
        state.shards.insert((sale.sale_id.clone(), u32::try_from(k).unwrap_or(0)), i64::from(units));
    }
    state.gates.insert(sale.sale_id.clone(), Gate::default());
    state.sales.insert(sale.sale_id.clone(), sale);
}

/// Sales, gates, shards, tickets and the queue in memory.
#[derive(Debug, Default)]
pub struct InMemoryFlashSales {
    state: Mutex<State>,
}

impl InMemoryFlashSales {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sets the available units of a SKU in a warehouse.
    pub fn with_stock(self, sku: &str, warehouse_id: &str, available: i64) -> Self {
        self.state().available.insert((sku.to_owned(), warehouse_id.to_owned()), available);
        self
    }

    /// Stores a sale as if created, its shards full.
    pub fn with_sale(self, sale: FlashSale) -> Self {
        insert_sale(&mut self.state(), sale);
        self
    }

    /// Closes a sale's gate (sold out).
    pub fn close(&self, sale_id: &str) {
        self.state().gates.entry(sale_id.to_owned()).or_default().sold_out = true;
    }

    /// Messages enqueued so far.
    pub fn queued(&self) -> Vec<EntryMessage> {
        self.state().queued.clone()
    }

    /// Number of tickets written.
    pub fn ticket_count(&self) -> usize {
        self.state().tickets.len()
    }

    /// Stores a ticket as it is (a won one holds a unit taken from its shard).
    pub fn with_ticket(self, ticket: Ticket) -> Self {
        {
            let mut state = self.state();
            if ticket.status == TicketStatus::Won {
                *state.shards.entry((ticket.sale_id.clone(), ticket.shard.unwrap_or(0))).or_default() -= 1;
            }
            state.tickets.insert(ticket.ticket_id.clone(), ticket);
        }
        self
    }

    /// Units left in a sale's shards.
    pub fn units_in_shards(&self, sale_id: &str) -> i64 {
        self.state().shards.iter().filter(|((id, _), _)| id == sale_id).map(|(_, units)| *units).sum()
    }
}

impl FlashHolds for InMemoryFlashSales {
    async fn consume(&self, ticket_id: &str, customer_id: &str, order_id: &str, now: DateTime<Utc>) -> Result<bool> {
        let mut state = self.state();
        match state.tickets.get_mut(ticket_id) {
            Some(t) if t.status == TicketStatus::Won && t.customer_id == customer_id && !t.hold_expired(now) => {
                t.status = TicketStatus::Purchased;
                t.order_id = Some(order_id.to_owned());
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

impl FlashSaleCreator for InMemoryFlashSales {
    async fn available_by_warehouse(&self, sku: &str) -> Result<Vec<(String, i64)>> {
        Ok(self.state().available.iter().filter(|((s, _), _)| s == sku).map(|((_, wh), n)| (wh.clone(), *n)).collect())
    }

    async fn create_sale(&self, sale: &FlashSale) -> Result<()> {
        let mut state = self.state();
        let available = state.available.entry((sale.sku.clone(), sale.warehouse_id.clone())).or_default();
        if *available < i64::from(sale.units) {
            return Err(DomainError::OutOfStock { sku: sale.sku.clone() });
        }
        *available -= i64::from(sale.units);
        insert_sale(&mut state, sale.clone());
        Ok(())
    }
}

impl FlashSaleReader for InMemoryFlashSales {
    async fn get_sale(&self, sale_id: &str) -> Result<Option<FlashSale>> {
        Ok(self.state().sales.get(sale_id).cloned())
    }

    async fn get_gate(&self, sale_id: &str, _consistent: bool) -> Result<Gate> {
        Ok(self.state().gates.get(sale_id).copied().unwrap_or_default())
    }
}

impl FlashEntryWriter for InMemoryFlashSales {
    async fn next_sequence(&self, sale_id: &str, k: u32) -> Result<u64> {
        let mut state = self.state();
        let seq = state.sequences.entry((sale_id.to_owned(), k)).or_default();
        *seq += 1;
        Ok(*seq)
    }

    async fn create_ticket(&self, ticket: &Ticket, limit: u32, min_interval: Duration) -> Result<EntryOutcome> {
        let mut state = self.state();
        if let Some(existing) = state.tickets.get(&ticket.ticket_id) {
            return Ok(EntryOutcome::Existing(existing.clone()));
        }
        let now_ms = ticket.created_at.timestamp_millis();
        let counter = state.customers.entry((ticket.sale_id.clone(), ticket.customer_id.clone())).or_default();
        if counter.0 >= i64::from(limit) {
            return Ok(EntryOutcome::LimitReached);
        }
        if min_interval > Duration::zero() && counter.1 > now_ms - min_interval.num_milliseconds() {
            return Ok(EntryOutcome::TooSoon);
        }
        *counter = (counter.0 + 1, now_ms);
        state.tickets.insert(ticket.ticket_id.clone(), ticket.clone());
        Ok(EntryOutcome::Created)
    }
}

impl WaitingRoom for InMemoryFlashSales {
    async fn enqueue(&self, ticket: &Ticket, _lane: u32) -> Result<()> {
        self.state().queued.push(EntryMessage::from(ticket));
        Ok(())
    }
}

impl FlashTicketStore for InMemoryFlashSales {
    async fn get_ticket(&self, ticket_id: &str) -> Result<Option<Ticket>> {
        Ok(self.state().tickets.get(ticket_id).cloned())
    }

    async fn mark_sold_out(&self, ticket: &Ticket) -> Result<bool> {
        let mut state = self.state();
        match state.tickets.get_mut(&ticket.ticket_id) {
            Some(stored) if stored.status == TicketStatus::Waiting => stored.status = TicketStatus::SoldOut,
            _ => return Ok(false),
        }
        if let Some(counter) = state.customers.get_mut(&(ticket.sale_id.clone(), ticket.customer_id.clone())) {
            counter.0 = (counter.0 - 1).max(0);
        }
        Ok(true)
    }

    async fn return_unit(&self, ticket: &Ticket, to: TicketStatus, now: DateTime<Utc>) -> Result<bool> {
        let mut state = self.state();
        let Some(stored) = state.tickets.get_mut(&ticket.ticket_id) else {
            return Ok(false);
        };
        let ok = match to {
            TicketStatus::Expired => stored.hold_expired(now),
            _ => stored.status == TicketStatus::Purchased && stored.order_id == ticket.order_id,
        };
        if !ok {
            return Ok(false);
        }
        stored.status = to;
        let shard = stored.shard.unwrap_or(0);
        *state.shards.entry((ticket.sale_id.clone(), shard)).or_default() += 1;
        let gate = state.gates.entry(ticket.sale_id.clone()).or_default();
        gate.sold_out = false;
        gate.returns += 1;
        if let Some(counter) = state.customers.get_mut(&(ticket.sale_id.clone(), ticket.customer_id.clone())) {
            counter.0 -= 1;
        }
        Ok(true)
    }
}
