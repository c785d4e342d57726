//! The table `stockade bench` prints: each endpoint's figure, its ratio to the direct engine, and
//! whether the gateway meets the target.

use std::fmt;

/// A target for the gateway column.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// Reported only.
    None,
    /// Latency: at most this many microseconds above direct.
    AddedAtMost(f64),
    /// Latency: at most this multiple of direct.
    RatioAtMost(f64),
    /// Throughput: at least this fraction of direct.
    RatioAtLeast(f64),
}

/// One metric across endpoints; index 0 is the direct engine, index 1 the gateway.
#[derive(Debug, Clone)]
pub struct Row {
    /// What was measured.
    pub metric: String,
    /// Its unit.
    pub unit: String,
    /// One figure per endpoint.
    pub values: Vec<f64>,
    /// The gateway's target.
    pub target: Target,
}

/// The `p` quantile (0 to 1) of the samples, nearest rank; NaN when there are none.
pub(crate) fn percentile(samples: &mut [f64], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_by(f64::total_cmp);
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index.min(samples.len() - 1)]
}

impl Row {
    /// A latency percentile over each endpoint's samples (microseconds).
    #[must_use]
    pub fn latency(metric: &str, samples: Vec<Vec<f64>>, p: f64, target: Target) -> Self {
        Self {
            metric: metric.to_owned(),
            unit: "us".to_owned(),
            values: samples
                .into_iter()
                .map(|mut s| percentile(&mut s, p))
                .collect(),
            target,
        }
    }

    /// The median over rounds of each endpoint's throughput (NaN for an endpoint with none).
    #[must_use]
    pub fn throughput(metric: &str, unit: &str, rounds: Vec<Vec<f64>>, target: Target) -> Self {
        Self {
            metric: metric.to_owned(),
            unit: unit.to_owned(),
            values: rounds
                .into_iter()
                .map(|mut r| percentile(&mut r, 0.5))
                .collect(),
            target,
        }
    }

    fn ratio(&self, index: usize) -> f64 {
        self.values[index] / self.values[0]
    }

    /// Whether the gateway meets the target (`None` when there is no target).
    #[must_use]
    pub fn meets_target(&self) -> Option<bool> {
        let gateway = *self.values.get(1)?;
        let direct = self.values[0];
        match self.target {
            Target::None => None,
            Target::AddedAtMost(us) => Some(gateway - direct <= us),
            Target::RatioAtMost(x) => Some(gateway / direct <= x),
            Target::RatioAtLeast(x) => Some(gateway / direct >= x),
        }
    }

    fn target_text(&self) -> String {
        match self.target {
            Target::None => String::new(),
            Target::AddedAtMost(us) => format!("<= direct+{us:.0}us"),
            Target::RatioAtMost(x) => format!("<= {x:.2}x"),
            Target::RatioAtLeast(x) => format!(">= {x:.2}x"),
        }
    }
}

/// The whole run.
#[derive(Debug, Clone)]
pub struct Report {
    names: Vec<String>,
    rounds: usize,
    rows: Vec<Row>,
    rss: Option<(f64, f64, usize)>,
    audit: Option<(f64, usize)>,
    notes: Vec<String>,
}

impl Report {
    pub(crate) fn new(names: Vec<String>, rounds: usize) -> Self {
        Self {
            names,
            rounds,
            rows: Vec::new(),
            rss: None,
            audit: None,
            notes: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, row: Row) {
        self.rows.push(row);
    }

    pub(crate) fn set_audit(&mut self, per_second: f64, records: usize) {
        self.audit = Some((per_second, records));
    }

    pub(crate) fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    pub(crate) fn set_rss(&mut self, idle_mib: f64, busy_mib: f64, streams: usize) {
        self.rss = Some((idle_mib, busy_mib, streams));
    }

    /// The rows measured.
    #[must_use]
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// Whether every target was met (RSS included when measured).
    #[must_use]
    pub fn all_targets_met(&self) -> bool {
        self.rows.iter().all(|r| r.meets_target() != Some(false))
            && self.rss.is_none_or(|(_, busy, _)| busy < 30.0)
            && self.audit.is_none_or(|(rate, _)| rate >= 20_000.0)
    }
}

fn figure(value: f64) -> String {
    if value.is_nan() {
        "broken".to_owned()
    } else if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "stockade bench: {} rounds, endpoints interleaved round-robin; ratio = endpoint / direct",
            self.rounds
        )?;
        write!(f, "{:<30} {:>6} {:>9}", "metric", "unit", self.names[0])?;
        for name in &self.names[1..] {
            write!(f, " {name:>9} {:>6}", "ratio")?;
        }
        writeln!(f, "  {:<16} gateway", "target")?;
        for row in &self.rows {
            write!(
                f,
                "{:<30} {:>6} {:>9}",
                row.metric,
                row.unit,
                figure(row.values[0])
            )?;
            for index in 1..row.values.len() {
                if row.values[index].is_nan() {
                    write!(f, " {:>9} {:>6}", "broken", "-")?;
                } else {
                    write!(
                        f,
                        " {:>9} {:>5.2}x",
                        figure(row.values[index]),
                        row.ratio(index)
                    )?;
                }
            }
            let verdict = match row.meets_target() {
                Some(true) => "ok",
                Some(false) => "MISS",
                None => "",
            };
            let extra = if row.unit == "us" {
                format!(" (+{:.0}us)", row.values[1] - row.values[0])
            } else {
                String::new()
            };
            writeln!(f, "  {:<16} {verdict}{extra}", row.target_text())?;
        }
        if let Some((idle, busy, streams)) = self.rss {
            let verdict = if busy < 30.0 { "ok" } else { "MISS" };
            writeln!(
                f,
                "gateway RSS: {idle:.1} MiB idle, {busy:.1} MiB with {streams} open event streams  (target < 30 MB) {verdict}"
            )?;
        }
        if let Some((rate, records)) = self.audit {
            let verdict = if rate >= 20_000.0 { "ok" } else { "MISS" };
            writeln!(
                f,
                "audit log: {rate:.0} records/s, {records} allow records with group commit from 16 tasks, chain verified  (target >= 20000/s) {verdict}"
            )?;
        }
        for note in &self.notes {
            writeln!(f, "broken: {note}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert!((percentile(&mut v, 0.5) - 51.0).abs() < 1.0);
        assert!((percentile(&mut v, 0.99) - 99.0).abs() < 1.0);
        assert!(percentile(&mut [], 0.5).is_nan());
    }

    #[test]
    fn targets() {
        let row = Row::throughput(
            "x",
            "MiB/s",
            vec![vec![100.0], vec![95.0]],
            Target::RatioAtLeast(0.9),
        );
        assert_eq!(row.meets_target(), Some(true));
        let row = Row::throughput(
            "x",
            "MiB/s",
            vec![vec![100.0], vec![85.0]],
            Target::RatioAtLeast(0.9),
        );
        assert_eq!(row.meets_target(), Some(false));
        let row = Row::latency(
            "p",
            vec![vec![100.0], vec![160.0]],
            0.5,
            Target::AddedAtMost(50.0),
        );
        assert_eq!(row.meets_target(), Some(false));
        let row = Row::latency(
            "p",
            vec![vec![100.0], vec![120.0]],
            0.5,
            Target::RatioAtMost(1.3),
        );
        assert_eq!(row.meets_target(), Some(true));
    }

    #[test]
    fn table_has_every_endpoint() {
        let mut report = Report::new(
            vec!["direct".into(), "stockade".into(), "haproxy".into()],
            1,
        );
        report.push(Row::throughput(
            "logs",
            "MiB/s",
            vec![vec![90.0, 100.0, 110.0], vec![95.0], vec![50.0]],
            Target::RatioAtLeast(0.9),
        ));
        report.set_rss(5.0, 8.0, 100);
        let text = report.to_string();
        assert!(text.contains("haproxy"));
        assert!(text.contains("0.95x"));
        assert!(text.contains("0.50x"));
        assert!(text.contains("8.0 MiB with 100"));
        let mut broken = Report::new(
            vec!["direct".into(), "stockade".into(), "haproxy".into()],
            1,
        );
        broken.push(Row::throughput(
            "exec",
            "MiB/s",
            vec![vec![100.0], vec![95.0], vec![]],
            Target::RatioAtLeast(0.9),
        ));
        broken.note("haproxy: upgrade refused".into());
        let text = broken.to_string();
        assert!(text.contains("broken") && !text.contains("NaN"), "{text}");
        assert!(report.all_targets_met());
    }
}
