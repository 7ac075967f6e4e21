//! The simulated team: thirteen services over the three stages, their
//! dependencies, sizes, versions and error characteristics.

use crate::domain::Stage;

pub struct Spec {
    pub name: &'static str,
    pub stage: Stage,
    pub owner: &'static str,
    pub depends_on: &'static [&'static str],
    pub replicas: u32,
    /// Requests per second at the daily peak.
    pub rps: f64,
    /// Versions the primary ran, oldest first; the last one runs now.
    pub versions: &'static [&'static str],
    /// Inherent error ratio of a healthy version.
    pub base_error: f64,
    pub p99_ms: f64,
    pub objective: f64,
    /// Words for log lines: the service's endpoints.
    pub paths: &'static [&'static str],
}

pub const TEAM: &str = "shop";

pub const FLEET: &[Spec] = &[
    Spec {
        name: "recs-proto",
        stage: Stage::Prototype,
        owner: "discovery",
        depends_on: &["catalog"],
        replicas: 1,
        rps: 4.0,
        versions: &["0.3.0", "0.3.1", "0.4.0"],
        base_error: 0.002,
        p99_ms: 240.0,
        objective: 99.0,
        paths: &["/recs", "/recs/similar"],
    },
    Spec {
        name: "search-ui",
        stage: Stage::Prototype,
        owner: "discovery",
        depends_on: &["catalog"],
        replicas: 2,
        rps: 8.0,
        versions: &["0.8.2", "0.9.0"],
        base_error: 0.001,
        p99_ms: 180.0,
        objective: 99.0,
        paths: &["/search", "/suggest"],
    },
    Spec {
        name: "pricing-lab",
        stage: Stage::Prototype,
        owner: "growth",
        depends_on: &["inventory"],
        replicas: 1,
        rps: 2.0,
        versions: &["0.1.0", "0.1.4"],
        base_error: 0.003,
        p99_ms: 300.0,
        objective: 98.0,
        paths: &["/quote", "/experiments"],
    },
    Spec {
        name: "notify-proto",
        stage: Stage::Prototype,
        owner: "growth",
        depends_on: &[],
        replicas: 1,
        rps: 3.0,
        versions: &["0.0.9", "0.1.0"],
        base_error: 0.001,
        p99_ms: 90.0,
        objective: 99.0,
        paths: &["/notify", "/subscriptions"],
    },
    Spec {
        name: "web-frontend",
        stage: Stage::Production,
        owner: "storefront",
        depends_on: &["cart", "catalog", "checkout", "auth"],
        replicas: 4,
        rps: 120.0,
        versions: &["3.11.0", "3.12.0", "3.12.1"],
        base_error: 0.0003,
        p99_ms: 210.0,
        objective: 99.9,
        paths: &["/", "/product", "/cart", "/account"],
    },
    Spec {
        name: "cart",
        stage: Stage::Production,
        owner: "storefront",
        depends_on: &["inventory", "auth"],
        replicas: 4,
        rps: 60.0,
        versions: &["2.6.3", "2.7.0", "2.7.1"],
        base_error: 0.0002,
        p99_ms: 95.0,
        objective: 99.9,
        paths: &["/api/cart", "/api/cart/items"],
    },
    Spec {
        name: "catalog",
        stage: Stage::Production,
        owner: "catalog-team",
        depends_on: &["inventory"],
        replicas: 3,
        rps: 90.0,
        versions: &["5.1.0", "5.2.0"],
        base_error: 0.0001,
        p99_ms: 70.0,
        objective: 99.9,
        paths: &["/api/products", "/api/categories"],
    },
    Spec {
        name: "inventory",
        stage: Stage::Production,
        owner: "catalog-team",
        depends_on: &[],
        replicas: 3,
        rps: 70.0,
        versions: &["1.9.0", "1.9.4"],
        base_error: 0.0004,
        p99_ms: 60.0,
        objective: 99.9,
        paths: &["/api/stock", "/api/reservations"],
    },
    Spec {
        name: "reviews",
        stage: Stage::Production,
        owner: "catalog-team",
        depends_on: &["catalog", "auth"],
        replicas: 2,
        rps: 20.0,
        versions: &["0.14.0", "0.15.0"],
        base_error: 0.0006,
        p99_ms: 150.0,
        objective: 99.5,
        paths: &["/api/reviews"],
    },
    Spec {
        name: "checkout",
        stage: Stage::MissionCritical,
        owner: "payments-team",
        depends_on: &["payments", "cart", "auth"],
        replicas: 6,
        rps: 40.0,
        versions: &["1.4.0", "1.4.1", "1.4.2"],
        base_error: 0.0002,
        p99_ms: 180.0,
        objective: 99.9,
        paths: &["/api/checkout", "/api/orders"],
    },
    Spec {
        name: "payments",
        stage: Stage::MissionCritical,
        owner: "payments-team",
        depends_on: &["ledger", "auth"],
        replicas: 4,
        rps: 35.0,
        versions: &["4.0.2", "4.1.0"],
        base_error: 0.0001,
        p99_ms: 220.0,
        objective: 99.95,
        paths: &["/api/charges", "/api/refunds"],
    },
    Spec {
        name: "auth",
        stage: Stage::MissionCritical,
        owner: "identity",
        depends_on: &[],
        replicas: 4,
        rps: 150.0,
        versions: &["7.2.0", "7.3.0"],
        base_error: 0.0001,
        p99_ms: 40.0,
        objective: 99.95,
        paths: &["/oauth/token", "/userinfo"],
    },
    Spec {
        name: "ledger",
        stage: Stage::MissionCritical,
        owner: "payments-team",
        depends_on: &[],
        replicas: 3,
        rps: 30.0,
        versions: &["2.2.0", "2.3.0"],
        base_error: 0.0001,
        p99_ms: 120.0,
        objective: 99.95,
        paths: &["/api/entries", "/api/balances"],
    },
];

/// The people in the simulated change history.
pub const PEOPLE: [&str; 4] = ["ana", "bo", "cy", "dee"];

/// Next patch version: `1.4.2` → `1.4.3`.
pub fn bump(version: &str) -> String {
    let mut parts: Vec<u64> = version.split('.').filter_map(|p| p.parse().ok()).collect();
    if parts.len() != 3 {
        return format!("{version}.1");
    }
    parts[2] += 1;
    format!("{}.{}.{}", parts[0], parts[1], parts[2])
}

pub fn image(name: &str, version: &str) -> String {
    format!("{TEAM}/{name}:{version}")
}

pub fn version_of(image: &str) -> &str {
    image.rsplit(':').next().unwrap_or(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fleet_is_consistent() {
        assert!(FLEET.len() >= 12);
        for stage in Stage::ALL {
            assert!(FLEET.iter().filter(|s| s.stage == stage).count() >= 3);
        }
        for spec in FLEET {
            for dep in spec.depends_on {
                assert!(FLEET.iter().any(|s| s.name == *dep), "{} depends on unknown {dep}", spec.name);
            }
        }
        assert_eq!(bump("1.4.2"), "1.4.3");
    }
}
