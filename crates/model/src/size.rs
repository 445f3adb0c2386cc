//! Dyno sizes, named as Heroku names them, with the limits each one gives a dyno.

use std::fmt;

use crate::Invalid;

/// A dyno size. `Eco` dynos sleep when their app is idle; the others never do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DynoSize {
    Eco,
    Basic,
    Standard1X,
    Standard2X,
    PerformanceM,
    PerformanceL,
}

impl DynoSize {
    pub const ALL: [DynoSize; 6] = [
        DynoSize::Eco,
        DynoSize::Basic,
        DynoSize::Standard1X,
        DynoSize::Standard2X,
        DynoSize::PerformanceM,
        DynoSize::PerformanceL,
    ];

    /// The size a process type gets until someone picks another.
    pub const DEFAULT: DynoSize = DynoSize::Basic;

    /// The display name the API returns (`Standard-1X`).
    pub fn name(self) -> &'static str {
        match self {
            DynoSize::Eco => "Eco",
            DynoSize::Basic => "Basic",
            DynoSize::Standard1X => "Standard-1X",
            DynoSize::Standard2X => "Standard-2X",
            DynoSize::PerformanceM => "Performance-M",
            DynoSize::PerformanceL => "Performance-L",
        }
    }

    /// The memory quota in MiB: above it a dyno gets R14 warnings, far above it R15.
    pub fn memory_mb(self) -> u64 {
        match self {
            DynoSize::Eco | DynoSize::Basic | DynoSize::Standard1X => 512,
            DynoSize::Standard2X => 1024,
            DynoSize::PerformanceM => 2560,
            DynoSize::PerformanceL => 14336,
        }
    }

    /// The disk cap in MiB: what a dyno may write in all (its `/app` over the slug, and
    /// anywhere else it can write but `/tmp`, a tmpfs counted in its memory); past it, writes
    /// fail with `ENOSPC`. The slug itself is shared and not counted. 2 GiB for the small
    /// sizes: room for a full 500 MB slug's worth of files written at run time, and four times
    /// their memory, as a page cache rarely needs more; then doubling with memory and compute
    /// up to 16 GiB for Performance-L, whose jobs (data processing, large builds at run time)
    /// are the ones that spill to disk. Heroku publishes no such figure for its ephemeral
    /// filesystem; these keep a host's disk safe with a few dozen dynos.
    pub fn disk_mb(self) -> u64 {
        match self {
            DynoSize::Eco | DynoSize::Basic | DynoSize::Standard1X => 2048,
            DynoSize::Standard2X => 4096,
            DynoSize::PerformanceM => 8192,
            DynoSize::PerformanceL => 16384,
        }
    }

    /// Relative CPU weight, as Heroku's "compute" multiplier.
    pub fn compute(self) -> u32 {
        match self {
            DynoSize::Eco | DynoSize::Basic | DynoSize::Standard1X => 1,
            DynoSize::Standard2X => 2,
            DynoSize::PerformanceM => 12,
            DynoSize::PerformanceL => 50,
        }
    }

    /// The most processes (and threads) a dyno of this size may run.
    pub fn max_processes(self) -> u32 {
        match self {
            DynoSize::Eco | DynoSize::Basic | DynoSize::Standard1X => 256,
            DynoSize::Standard2X => 512,
            DynoSize::PerformanceM => 16384,
            DynoSize::PerformanceL => 32768,
        }
    }

    /// Sleeps when the app gets no traffic.
    pub fn sleeps(self) -> bool {
        self == DynoSize::Eco
    }

    /// Accepts the display name in any case (`standard-2x`), and Heroku's short forms
    /// `1X`, `2X`, `PM`, `PL`.
    pub fn parse(raw: &str) -> Result<DynoSize, Invalid> {
        let lower = raw.trim().to_ascii_lowercase();
        let short = match lower.as_str() {
            "1x" => Some(DynoSize::Standard1X),
            "2x" => Some(DynoSize::Standard2X),
            "pm" => Some(DynoSize::PerformanceM),
            "pl" => Some(DynoSize::PerformanceL),
            _ => None,
        };
        short
            .or_else(|| {
                DynoSize::ALL
                    .into_iter()
                    .find(|size| size.name().to_ascii_lowercase() == lower)
            })
            .ok_or_else(|| {
                let names: Vec<_> = DynoSize::ALL.iter().map(|s| s.name()).collect();
                Invalid::new(format!(
                    "There is no dyno size {raw:?}: choose one of {}",
                    names.join(", ")
                ))
            })
    }
}

impl fmt::Display for DynoSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names_and_short_forms() {
        for size in DynoSize::ALL {
            assert_eq!(DynoSize::parse(size.name()), Ok(size));
            assert_eq!(DynoSize::parse(&size.name().to_lowercase()), Ok(size));
        }
        assert_eq!(DynoSize::parse("2X"), Ok(DynoSize::Standard2X));
        assert_eq!(DynoSize::parse("standard-1x"), Ok(DynoSize::Standard1X));
        let err = DynoSize::parse("huge").unwrap_err().to_string();
        assert!(
            err.contains("\"huge\"") && err.contains("Performance-L"),
            "{err}"
        );
    }

    #[test]
    fn disk_grows_with_the_size() {
        let check = |size: DynoSize, mb: u64| assert_eq!(size.disk_mb(), mb, "{size}");
        check(DynoSize::Eco, 2048);
        check(DynoSize::Basic, 2048);
        check(DynoSize::Standard1X, 2048);
        check(DynoSize::Standard2X, 4096);
        check(DynoSize::PerformanceM, 8192);
        check(DynoSize::PerformanceL, 16384);
        for pair in DynoSize::ALL.windows(2) {
            assert!(pair[0].disk_mb() <= pair[1].disk_mb(), "{pair:?}");
        }
        // Never less than the memory: a dyno can always write out what it holds.
        for size in DynoSize::ALL {
            assert!(size.disk_mb() >= size.memory_mb(), "{size}");
        }
    }

    #[test]
    fn only_eco_sleeps() {
        let sleepers: Vec<_> = DynoSize::ALL.into_iter().filter(|s| s.sleeps()).collect();
        assert_eq!(sleepers, [DynoSize::Eco]);
    }
}
