//! The `REPORT` line logged after every invocation, as Lambda writes one to CloudWatch Logs.
//!
//! `duration_ms` runs from the Runtime API handing the event to the function (`GET .../invocation/next`
//! answered) to the function's `POST .../response` or `.../error`; `billed_ms` is that rounded up to the next
//! millisecond, as Lambda bills it. `max_memory_mb` is the environment's peak resident set (`VmHWM`), which, as
//! on Lambda, covers the environment's whole life so far.

use std::fmt;
use std::time::Duration;

/// One invocation's billing facts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Report<'a> {
    pub function: &'a str,
    pub request_id: &'a str,
    pub duration: Duration,
    pub memory_mb: u32,
    pub max_memory_mb: Option<u64>,
}

impl Report<'_> {
    /// The billed duration: the duration rounded up to whole milliseconds, at least 1.
    pub fn billed_ms(&self) -> u64 {
        let ms = self.duration.as_nanos().div_ceil(1_000_000).max(1);
        u64::try_from(ms).unwrap_or(u64::MAX)
    }
}

/// `REPORT function=<id> request_id=<id> duration_ms=<f64> billed_ms=<u64> memory_mb=<u32> max_memory_mb=<u64|->`.
impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "REPORT function={} request_id={} duration_ms={:.3} billed_ms={} memory_mb={} max_memory_mb=",
            self.function,
            self.request_id,
            self.duration.as_secs_f64() * 1000.0,
            self.billed_ms(),
            self.memory_mb,
        )?;
        match self.max_memory_mb {
            Some(mb) => write!(f, "{mb}"),
            None => f.write_str("-"),
        }
    }
}

/// The peak resident set of process `pid` in MB (rounded up), from `VmHWM` in `/proc/<pid>/status`.
pub(crate) fn peak_rss_mb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    vm_hwm_mb(&status)
}

fn vm_hwm_mb(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb.div_ceil(1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(duration: Duration, max_memory_mb: Option<u64>) -> Report<'static> {
        Report { function: "ReserveStockFunction", request_id: "r-1", duration, memory_mb: 256, max_memory_mb }
    }

    #[test]
    fn billed_duration_rounds_up_to_the_next_millisecond_and_is_at_least_one() {
        assert_eq!(report(Duration::from_micros(12_001), None).billed_ms(), 13);
        assert_eq!(report(Duration::from_millis(12), None).billed_ms(), 12);
        assert_eq!(report(Duration::from_nanos(12_000_001), None).billed_ms(), 13);
        assert_eq!(report(Duration::from_micros(150), None).billed_ms(), 1);
        assert_eq!(report(Duration::ZERO, None).billed_ms(), 1);
    }

    #[test]
    fn the_line_has_every_field_in_order() {
        assert_eq!(
            report(Duration::from_micros(12_345_678), Some(9)).to_string(),
            "REPORT function=ReserveStockFunction request_id=r-1 duration_ms=12345.678 billed_ms=12346 \
             memory_mb=256 max_memory_mb=9"
        );
        assert!(report(Duration::from_micros(1_500), None)
            .to_string()
            .ends_with("billed_ms=2 memory_mb=256 max_memory_mb=-"));
    }

    #[test]
    fn peak_memory_comes_from_vm_hwm_rounded_up_to_megabytes() {
        let status = "Name:\tcheckout\nVmPeak:\t   20000 kB\nVmHWM:\t    5121 kB\nVmRSS:\t    4000 kB\n";
        assert_eq!(vm_hwm_mb(status), Some(6));
        assert_eq!(vm_hwm_mb("VmHWM:\t 2048 kB\n"), Some(2));
        assert_eq!(vm_hwm_mb("Name:\tx\n"), None);
        assert_eq!(peak_rss_mb(std::process::id()).map(|mb| mb > 0), Some(true));
    }
}
