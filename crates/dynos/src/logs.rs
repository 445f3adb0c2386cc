//! Log lines come from the log router (`wharf-logs`); the dyno manager appends its dynos'
//! output and state changes to it.

pub use wharf_logs::{now_micros, LineSplitter, LogBuffer, LogLine, LogSource, MAX_LINE_BYTES};
