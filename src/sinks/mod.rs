//! Sinks: where Tideline's data goes out to other systems. They read from the store (and
//! record their delivery state in it); they never change interactions.
//!
//! - `crm/`: CRM timeline sync through the outbox (HubSpot, Salesforce, webhook).

pub mod crm;
