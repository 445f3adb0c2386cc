//! The plans of `wharf-postgresql`, Heroku's names with Heroku's limits (see the table in
//! [`crate::postgres`]).

use crate::{Limits, Plan};

/// `(name, storage in MB, connections, backups kept)`; the first is the default.
const PLANS: [(&str, u64, u32, u32); 5] = [
    ("mini", 1024, 20, 2),
    ("essential-0", 1024, 20, 5),
    ("essential-1", 10 * 1024, 20, 5),
    ("essential-2", 32 * 1024, 40, 5),
    ("standard-0", 64 * 1024, 120, 25),
];

pub(super) fn plans() -> Vec<Plan> {
    PLANS
        .iter()
        .enumerate()
        .map(|(index, &(name, storage_mb, connections, backups))| Plan {
            name: name.to_owned(),
            description: format!(
                "{} of data, {connections} connections, {backups} backups kept",
                super::info::human_size(storage_mb * 1024 * 1024)
            ),
            default: index == 0,
            limits: Limits {
                memory_mb: None,
                connections: Some(connections),
                storage_mb: Some(storage_mb),
                backups: Some(backups),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mini_is_the_default_and_limits_grow_with_the_plan() {
        let plans = plans();
        let defaults: Vec<&str> = plans
            .iter()
            .filter(|plan| plan.default)
            .map(|plan| plan.name.as_str())
            .collect();
        assert_eq!(defaults, ["mini"]);
        let check = |name: &str, expected: &str| {
            let plan = plans.iter().find(|plan| plan.name == name).expect(name);
            assert_eq!(plan.description, expected);
        };
        check("mini", "1 GB of data, 20 connections, 2 backups kept");
        check(
            "essential-2",
            "32 GB of data, 40 connections, 5 backups kept",
        );
        check(
            "standard-0",
            "64 GB of data, 120 connections, 25 backups kept",
        );
        for pair in plans.windows(2) {
            assert!(pair[0].limits.storage_mb <= pair[1].limits.storage_mb);
            assert!(pair[0].limits.connections <= pair[1].limits.connections);
        }
    }
}
