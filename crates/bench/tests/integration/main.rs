//! Smoke test of `ikt-load`: a tiny quick run over every mode writes a report with every mode,
//! completed registrations in each and no lost bundles. No timing is asserted.

mod smoke;
