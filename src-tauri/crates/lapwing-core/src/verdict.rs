//! The one verdict every summary derives from: how a product stands for a person (all good,
//! working, needs attention, not usable) and why, and the same across all products with
//! their counts. The tray's icon, tooltip and menu, the Products window's header,
//! Diagnostics, `lapctl doctor` and `lapctl status` all read it here, so no two of them can
//! disagree about the same product.

use std::fmt;
use std::fmt::Write as _;

use serde::Serialize;

use crate::engine::ProductStatus;
use crate::state::AttemptOutcome;
use crate::status::Phase;

/// An end this close (in whole days) needs attention. Also the tray's "soon".
pub const SOON_DAYS: u64 = 7;

/// How a product stands, worst last (the overall verdict is the worst of its products').
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    AllGood,
    /// An attempt is due now or running: the result is not known yet.
    Working,
    /// Still usable, but something needs looking at.
    Attention,
    /// The product cannot be used.
    Broken,
}

impl Verdict {
    /// The word scripts key on (`lapctl status --json`'s `verdict.level`, the UI's).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AllGood => "all-good",
            Self::Working => "working",
            Self::Attention => "attention",
            Self::Broken => "broken",
        }
    }

    /// The words every summary uses for it: the tray's tooltip, the Products header, doctor.
    pub fn words(self) -> &'static str {
        match self {
            Self::AllGood => "all good",
            Self::Working => "activating",
            Self::Attention => "needs attention",
            Self::Broken => "not usable",
        }
    }
}

/// Why a product has its verdict. The variant names are the codes, in kebab-case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Activated, nothing due.
    Activated,
    /// An evaluation with more than [`SOON_DAYS`] left.
    Evaluating,
    /// A renewal or first attempt is due now.
    AttemptDue,
    /// Usable, but the last attempt did not activate (not sent, no answer, refused).
    LastAttemptFailed(AttemptOutcome),
    /// The license or the evaluation ends within [`SOON_DAYS`].
    EndsSoon { days_left: u64 },
    /// The server says the license is used beyond its terms.
    OutOfCompliance,
    /// This machine's clock is behind a time already seen: nothing is sent.
    ClockMovedBack,
    /// No activation: no key, or the attempt with it failed.
    NotActivated,
    /// The license has expired.
    Expired,
    /// The evaluation is over and no key activated the product.
    EvaluationOver,
    /// Deactivated on this computer at the person's request: nothing to do here.
    Deactivated,
    /// Activated for good by the vendor's final release.
    Sunset,
    /// The server said Duplicate: this installation looks cloned or restored from a snapshot.
    Duplicate,
}

/// Words for an attempt's outcome, as a person reads them ("last attempt: no answer").
pub fn outcome_words(outcome: AttemptOutcome) -> &'static str {
    match outcome {
        AttemptOutcome::Activated => "activated",
        AttemptOutcome::NoAnswer => "no answer",
        AttemptOutcome::RejectedAnswer => "answer refused",
        AttemptOutcome::NotSent => "not sent",
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Activated => f.write_str("activated"),
            Self::Evaluating => f.write_str("evaluation running"),
            Self::AttemptDue => f.write_str("an activation is due"),
            Self::LastAttemptFailed(outcome) => {
                write!(f, "the last attempt failed ({})", outcome_words(*outcome))
            }
            Self::EndsSoon { days_left: 1 } => f.write_str("ends within 1 day"),
            Self::EndsSoon { days_left } => write!(f, "ends within {days_left} days"),
            Self::OutOfCompliance => f.write_str("out of compliance"),
            Self::ClockMovedBack => f.write_str("this machine's clock was moved back"),
            Self::NotActivated => f.write_str("not activated"),
            Self::Expired => f.write_str("the license has expired"),
            Self::EvaluationOver => f.write_str("the evaluation is over"),
            Self::Deactivated => f.write_str("deactivated on this computer"),
            Self::Sunset => f.write_str("activated for good (the vendor's final release)"),
            Self::Duplicate => {
                f.write_str("this installation looks cloned or restored from a snapshot")
            }
        }
    }
}

/// One product's verdict and its reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProductVerdict {
    pub verdict: Verdict,
    pub reason: Reason,
}

/// Serialized as `{"level": "attention", "reason": "ends-soon", "message": "ends within 3
/// days"}`: scripts and the UI key on `level` and `reason`, and show `message`.
impl Serialize for ProductVerdict {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut s = serializer.serialize_struct("ProductVerdict", 3)?;
        s.serialize_field("level", &self.verdict)?;
        s.serialize_field("reason", self.reason.code())?;
        s.serialize_field("message", &self.reason.to_string())?;
        s.end()
    }
}

impl Reason {
    /// The stable code of the reason.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Activated => "activated",
            Self::Evaluating => "evaluating",
            Self::AttemptDue => "attempt-due",
            Self::LastAttemptFailed(_) => "last-attempt-failed",
            Self::EndsSoon { .. } => "ends-soon",
            Self::OutOfCompliance => "out-of-compliance",
            Self::ClockMovedBack => "clock-moved-back",
            Self::NotActivated => "not-activated",
            Self::Expired => "expired",
            Self::EvaluationOver => "evaluation-over",
            Self::Deactivated => "deactivated",
            Self::Sunset => "sunset",
            Self::Duplicate => "duplicate",
        }
    }
}

/// The verdict on one product at `now` (UNIX seconds).
pub fn product_verdict(s: &ProductStatus, now: u64) -> ProductVerdict {
    let v = |verdict, reason| ProductVerdict { verdict, reason };
    match s.state {
        Phase::Unlicensed => return v(Verdict::Broken, Reason::NotActivated),
        Phase::Expired => return v(Verdict::Broken, Reason::Expired),
        Phase::EvaluationExpired => return v(Verdict::Broken, Reason::EvaluationOver),
        // Both are where the person or the vendor left them for good: nothing is due, and
        // nothing needs doing on this computer.
        Phase::Deactivated => return v(Verdict::AllGood, Reason::Deactivated),
        Phase::Sunset => return v(Verdict::AllGood, Reason::Sunset),
        Phase::Activated | Phase::RenewalDue | Phase::Evaluation => {}
    }
    if s.duplicate {
        return v(Verdict::Attention, Reason::Duplicate);
    }
    if s.clock_moved_back_by.is_some() {
        return v(Verdict::Attention, Reason::ClockMovedBack);
    }
    if s.in_compliance == Some(false) {
        return v(Verdict::Attention, Reason::OutOfCompliance);
    }
    if let Some(outcome) = s
        .last_attempt
        .as_ref()
        .map(|a| a.outcome)
        .filter(|o| *o != AttemptOutcome::Activated)
    {
        return v(Verdict::Attention, Reason::LastAttemptFailed(outcome));
    }
    if let Some(days_left) = s.days_left.filter(|d| *d <= SOON_DAYS) {
        return v(Verdict::Attention, Reason::EndsSoon { days_left });
    }
    if s.next_attempt_at.is_some_and(|at| at <= now) {
        return v(Verdict::Working, Reason::AttemptDue);
    }
    if s.state == Phase::Evaluation {
        v(Verdict::AllGood, Reason::Evaluating)
    } else {
        v(Verdict::AllGood, Reason::Activated)
    }
}

/// A status with its verdict, as `lapctl status --json` writes each product: the status's
/// fields and `verdict`.
#[derive(Debug, Clone, Serialize)]
pub struct Judged<'a> {
    #[serde(flatten)]
    pub status: &'a ProductStatus,
    pub verdict: ProductVerdict,
}

/// Each status with its verdict at `now`.
pub fn judged(statuses: &[ProductStatus], now: u64) -> Vec<Judged<'_>> {
    statuses
        .iter()
        .map(|status| Judged {
            status,
            verdict: product_verdict(status, now),
        })
        .collect()
}

/// How many products have each verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub all_good: usize,
    pub working: usize,
    pub attention: usize,
    pub broken: usize,
}

impl Counts {
    pub fn total(&self) -> usize {
        self.all_good + self.working + self.attention + self.broken
    }

    fn add(&mut self, verdict: Verdict) {
        match verdict {
            Verdict::AllGood => self.all_good += 1,
            Verdict::Working => self.working += 1,
            Verdict::Attention => self.attention += 1,
            Verdict::Broken => self.broken += 1,
        }
    }
}

/// The verdict across all products: the worst one, and the counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Overall {
    pub verdict: Verdict,
    pub counts: Counts,
}

impl Overall {
    /// From the products' verdicts (no product: all good).
    pub fn of(verdicts: impl IntoIterator<Item = Verdict>) -> Self {
        let mut counts = Counts::default();
        let mut worst = Verdict::AllGood;
        for verdict in verdicts {
            counts.add(verdict);
            worst = worst.max(verdict);
        }
        Self {
            verdict: worst,
            counts,
        }
    }

    /// The overall verdict on these statuses at `now`.
    pub fn of_statuses(statuses: &[ProductStatus], now: u64) -> Self {
        Self::of(statuses.iter().map(|s| product_verdict(s, now).verdict))
    }

    /// The summary a header shows: "2 products · all in order", "3 products · 1 not
    /// usable · 1 needs attention", "1 product · activating…".
    pub fn summary(&self) -> String {
        let c = &self.counts;
        let mut text = plural(c.total(), "product", "products");
        if c.broken > 0 {
            let _ = write!(text, " · {} not usable", c.broken);
        }
        if c.attention > 0 {
            let verb = if c.attention == 1 { "needs" } else { "need" };
            let _ = write!(text, " · {} {verb} attention", c.attention);
        }
        if c.working > 0 {
            let _ = write!(text, " · {} activating", c.working);
        }
        if c.broken + c.attention + c.working == 0 {
            text.push_str(" · all in order");
        }
        text
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// The result of activating several products at once, counted from each attempt's outcome
/// (not from the phase: a product activated before and not sent to now was not activated
/// by this batch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchResult {
    pub attempted: usize,
    pub activated: usize,
    pub not_sent: usize,
    pub failed: usize,
    /// Why each attempt not sent was not sent: the first cause's words, one per product.
    pub not_sent_why: Vec<String>,
}

impl BatchResult {
    /// The batch's result from the statuses it returned (their last attempt is this batch's).
    pub fn of(statuses: &[ProductStatus]) -> Self {
        let mut out = Self {
            attempted: statuses.len(),
            activated: 0,
            not_sent: 0,
            failed: 0,
            not_sent_why: Vec::new(),
        };
        for s in statuses {
            let not_sent = |why: String| format!("{}: {why}", s.name);
            match s.last_attempt.as_ref() {
                Some(a) if a.outcome == AttemptOutcome::Activated => out.activated += 1,
                Some(a) if a.outcome == AttemptOutcome::NotSent => {
                    out.not_sent += 1;
                    let why = a.diagnosis.first().map_or_else(
                        || "nothing could be sent".to_owned(),
                        |c| c.short().into_owned(),
                    );
                    out.not_sent_why.push(not_sent(why));
                }
                None => {
                    out.not_sent += 1;
                    out.not_sent_why
                        .push(not_sent("no attempt was made".into()));
                }
                Some(_) => out.failed += 1,
            }
        }
        out
    }

    /// "2 of 2 products activated.", "1 of 2 products activated; 1 not sent (Acme Export: no
    /// server found)."
    pub fn sentence(&self) -> String {
        let mut text = format!(
            "{} of {} activated",
            self.activated,
            plural(self.attempted, "product", "products")
        );
        if self.not_sent > 0 {
            let _ = write!(
                text,
                "; {} not sent ({})",
                self.not_sent,
                self.not_sent_why.join("; ")
            );
        }
        if self.failed > 0 {
            let _ = write!(text, "; {} sent without success", self.failed);
        }
        text.push('.');
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_overall_verdict_is_the_worst_and_the_summary_counts_each() {
        let o = Overall::of([Verdict::AllGood, Verdict::Broken, Verdict::Attention]);
        assert_eq!(o.verdict, Verdict::Broken);
        assert_eq!(o.summary(), "3 products · 1 not usable · 1 needs attention");
        assert_eq!(
            Overall::of([Verdict::AllGood]).summary(),
            "1 product · all in order"
        );
        assert_eq!(
            Overall::of([Verdict::AllGood, Verdict::Working]).summary(),
            "2 products · 1 activating"
        );
        assert_eq!(Overall::of([]).verdict, Verdict::AllGood);
    }

    #[test]
    fn deactivated_and_sunset_need_nothing_and_a_duplicate_needs_attention() {
        let status = |state: Phase, duplicate: bool| ProductStatus {
            state,
            duplicate,
            license_id: Some(lap_proto::Uuid::from_u128(1)),
            ..ProductStatus::default()
        };
        let cases = [
            (
                status(Phase::Deactivated, false),
                Verdict::AllGood,
                "deactivated",
            ),
            (status(Phase::Sunset, true), Verdict::AllGood, "sunset"),
            (
                status(Phase::Activated, true),
                Verdict::Attention,
                "duplicate",
            ),
        ];
        for (s, verdict, code) in cases {
            let v = product_verdict(&s, 0);
            assert_eq!(
                (v.verdict, v.reason.code()),
                (verdict, code),
                "{:?}",
                s.state
            );
        }
        let cloned = status(Phase::Activated, true);
        assert!(
            cloned
                .lifecycle_note()
                .is_some_and(|n| n.contains("/etc/machine-id") && n.contains("SMBIOS UUID"))
        );
        assert_eq!(
            product_verdict(&cloned, 0).reason.to_string(),
            "this installation looks cloned or restored from a snapshot"
        );
    }

    #[test]
    fn verdicts_serialize_with_level_reason_and_message() {
        let v = ProductVerdict {
            verdict: Verdict::Attention,
            reason: Reason::EndsSoon { days_left: 3 },
        };
        assert_eq!(
            serde_json::to_value(v).expect("serializes"),
            serde_json::json!({"level": "attention", "reason": "ends-soon", "message": "ends within 3 days"})
        );
    }
}
