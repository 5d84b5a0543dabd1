//! The largest request body read (`server.max_body_bytes`); larger ones get 413. Set once as
//! request data and honoured by the body reader (`api::input`).

#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

impl BodyLimit {
    /// What the reader assumes if the data is missing (a misassembled app): the default.
    pub const DEFAULT: BodyLimit = BodyLimit(64 * 1024);
}
