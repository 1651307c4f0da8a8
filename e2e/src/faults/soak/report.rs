//! The soak's figures, its table, and the verdict: memory and descriptors of the control
//! planes that ran through the whole soak against their warm-up figures, and the invariants.

use std::fmt::Write as _;
use std::time::Duration;

use super::churn::ChurnStats;
use super::usage::Usage;

/// One control-plane process's figures after warm-up and at the end.
#[derive(Debug, Clone)]
pub struct ProcessFigures {
    pub name: String,
    pub warm: Usage,
    pub end: Usage,
    /// Killed and restarted by a fault since warm-up: a new process, its figures not judged.
    pub restarted: bool,
}

impl ProcessFigures {
    pub fn rss_ratio(&self) -> f64 {
        self.end.rss_kib as f64 / self.warm.rss_kib.max(1) as f64
    }
}

/// One injected fault.
#[derive(Debug, Clone)]
pub struct FaultFigures {
    pub name: &'static str,
    /// When it began, from the soak's start.
    pub at: Duration,
    pub lasted: Duration,
    /// From the end of the fault to the zones holding the global's state, writes paused.
    pub converged: Option<Duration>,
    /// (failed, sent) from the start of the fault until the checkpoint after it.
    pub cross: (usize, usize),
    pub local: (usize, usize),
}

/// Limits the verdict applies.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// End RSS over warm-up RSS, at most.
    pub rss_ratio: f64,
    /// Descriptors the end may hold over warm-up.
    pub fd_slack: usize,
}

#[derive(Debug, Clone)]
pub struct SoakReport {
    pub form: String,
    pub ran: Duration,
    pub processes: Vec<ProcessFigures>,
    pub faults: Vec<FaultFigures>,
    /// (failed, sent) over the whole run.
    pub cross: (usize, usize),
    pub local: (usize, usize),
    /// (acknowledged, retryable failures, refused).
    pub writes: (usize, usize, usize),
    pub churn: ChurnStats,
    pub violations: Vec<String>,
    pub limits: Limits,
}

impl SoakReport {
    /// Why the soak failed; empty when it passed.
    pub fn failures(&self) -> Vec<String> {
        let mut failures: Vec<String> = self
            .violations
            .iter()
            .map(|v| format!("invariant: {v}"))
            .collect();
        for p in self.processes.iter().filter(|p| !p.restarted) {
            if p.rss_ratio() > self.limits.rss_ratio {
                failures.push(format!(
                    "{}: RSS grew from {} KiB to {} KiB (x{:.2} > x{:.2})",
                    p.name,
                    p.warm.rss_kib,
                    p.end.rss_kib,
                    p.rss_ratio(),
                    self.limits.rss_ratio
                ));
            }
            if p.end.fds > p.warm.fds + self.limits.fd_slack {
                failures.push(format!(
                    "{}: open descriptors grew from {} to {} (slack {})",
                    p.name, p.warm.fds, p.end.fds, self.limits.fd_slack
                ));
            }
        }
        failures
    }

    /// The figures as a plain-text table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "SOAK | form {} | ran {:.0} s",
            self.form,
            self.ran.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "SOAK | process        | RSS warm-up KiB | RSS end KiB | ratio | fds warm-up | fds end | judged"
        );
        for p in &self.processes {
            let _ = writeln!(
                out,
                "SOAK | {:<14} | {:>15} | {:>11} | {:>5.2} | {:>11} | {:>7} | {}",
                p.name,
                p.warm.rss_kib,
                p.end.rss_kib,
                p.rss_ratio(),
                p.warm.fds,
                p.end.fds,
                if p.restarted { "no (restarted)" } else { "yes" }
            );
        }
        let _ = writeln!(
            out,
            "SOAK | fault                  | at s  | lasted s | converged s | cross failed | in-zone failed"
        );
        for f in &self.faults {
            let converged = f
                .converged
                .map_or("never".to_string(), |c| format!("{:.1}", c.as_secs_f64()));
            let _ = writeln!(
                out,
                "SOAK | {:<22} | {:>5.0} | {:>8.1} | {:>11} | {:>5}/{:<6} | {:>5}/{:<6}",
                f.name,
                f.at.as_secs_f64(),
                f.lasted.as_secs_f64(),
                converged,
                f.cross.0,
                f.cross.1,
                f.local.0,
                f.local.1
            );
        }
        let times: Vec<f64> = self
            .faults
            .iter()
            .filter_map(|f| f.converged.map(|c| c.as_secs_f64()))
            .collect();
        let max = times.iter().copied().fold(0.0, f64::max);
        let mean = times.iter().sum::<f64>() / times.len().max(1) as f64;
        let c = &self.churn;
        let lines = [
            format!(
                "faults injected: {} (convergence mean {mean:.1} s, max {max:.1} s)",
                self.faults.len()
            ),
            format!(
                "requests cross-zone: {} sent, {} failed; in-zone: {} sent, {} failed",
                self.cross.1, self.cross.0, self.local.1, self.local.0
            ),
            format!(
                "writes: {} acknowledged, {} retryable failures, {} refused",
                self.writes.0, self.writes.1, self.writes.2
            ),
            format!(
                "churn: {} ticks ({} late), {} joins ({} failed), {} leaves ({} unclean), {} config changes ({} failed)",
                c.ticks,
                c.late_ticks,
                c.joins,
                c.join_failures,
                c.leaves,
                c.unclean_leaves,
                c.config_changes,
                c.config_failures
            ),
            format!("invariant violations: {}", self.violations.len()),
        ];
        for line in lines {
            let _ = writeln!(out, "SOAK | {line}");
        }
        for error in &c.errors {
            let _ = writeln!(out, "SOAK | churn error: {error}");
        }
        for v in &self.violations {
            let _ = writeln!(out, "SOAK | violation: {v}");
        }
        out
    }
}
