//! The tech_debt phase: each asset's support status from the end-of-support
//! catalogue shipped in the binary (`support_catalogue.toml`: server operating
//! systems and database engines, with their source and the day they were
//! checked), its 6R readiness, and the engagement's tech-debt analysis on the
//! discovery flow.
//!
//! An asset's components are its operating system (operating_system and
//! os_version) and the database engines named in technology_stack (and, for
//! a database asset, in its name, description and model). Each component is
//! supported before its standard support ends, extended_support until its
//! extended support ends, end_of_life after; the asset takes its worst
//! component. With no component in the catalogue, end-of-support dates the
//! export itself carried decide; an application with neither takes the worst
//! verdict of the machines it runs on; otherwise the status is unknown.
//! What the verdict rests on is stored in `tech_debt_details`.

mod catalogue;

use std::collections::BTreeMap;

/// support_status, tech_debt_score, sixr_ready, tech_debt_details as stored.
type Stored = (Option<String>, Option<f64>, Option<String>, Option<String>);

use rusqlite::{params, Connection};
use serde::Serialize;
use serde_json::{json, Value};

use crate::flow::{self, Phase};
use crate::phase::{PhaseCtx, PhaseOutcome};

pub use catalogue::{Catalogue, CatalogueInfo, Component, ProductKind, CATALOGUE};

/// The support statuses, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SupportStatus {
    Unknown,
    Supported,
    ExtendedSupport,
    EndOfLife,
}

impl SupportStatus {
    pub fn name(self) -> &'static str {
        match self {
            SupportStatus::Unknown => "unknown",
            SupportStatus::Supported => "supported",
            SupportStatus::ExtendedSupport => "extended_support",
            SupportStatus::EndOfLife => "end_of_life",
        }
    }

    /// The status `name` gives, as stored in assets.support_status.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            SupportStatus::Unknown,
            SupportStatus::Supported,
            SupportStatus::ExtendedSupport,
            SupportStatus::EndOfLife,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }

    /// The status on `as_of` (YYYY-MM-DD) of something whose standard support
    /// ends on `support_end` and extended support on `extended_end`.
    pub fn on(as_of: &str, support_end: Option<&str>, extended_end: Option<&str>) -> Self {
        match (support_end, extended_end) {
            (Some(s), _) if as_of <= s => SupportStatus::Supported,
            (Some(_), Some(e)) if as_of <= e => SupportStatus::ExtendedSupport,
            (Some(_), _) => SupportStatus::EndOfLife,
            (None, Some(e)) if as_of <= e => SupportStatus::ExtendedSupport,
            (None, Some(_)) => SupportStatus::EndOfLife,
            // Listed with no announced end.
            (None, None) => SupportStatus::Supported,
        }
    }
}

/// What the phase did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TechDebtOutcome {
    pub as_of: String,
    pub assets: u64,
    pub updated: u64,
    pub by_status: BTreeMap<String, u64>,
    pub sixr_ready: u64,
    pub sixr_not_ready: u64,
    /// End-user devices: never 6R candidates (sixr_ready `not_applicable`).
    pub sixr_not_applicable: u64,
    /// The worst assets: end of life first, oldest end first.
    pub worst: Vec<Offender>,
    /// What discovery_flows.tech_debt_analysis keeps (by product, missing
    /// 6R fields); `--json` shows the fields above instead.
    #[serde(skip)]
    pub analysis: Value,
    /// Assets by what a known verdict rests on, and the 6R fields missing,
    /// counted as the verdicts are made (for the analysis).
    #[serde(skip)]
    by_product: BTreeMap<String, u64>,
    #[serde(skip)]
    missing_fields: BTreeMap<&'static str, u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Offender {
    pub name: String,
    pub asset_type: String,
    pub status: SupportStatus,
    pub score: Option<f64>,
    /// "Windows Server 2008 R2", or "end_of_support_date from the source".
    pub based_on: String,
    /// When support (extended, else standard) ended or ends.
    pub support_ends: Option<String>,
}

/// One asset's verdict.
#[derive(Debug, Clone)]
pub struct Assessment {
    pub status: SupportStatus,
    pub score: Option<f64>,
    pub sixr_missing: Vec<&'static str>,
    pub details: Value,
    pub based_on: String,
    pub support_ends: Option<String>,
}

/// The fields an asset needs before a 6R assessment, by asset type;
/// "dependencies" means the asset runs on something the inventory knows.
pub fn sixr_required(asset_type: &str) -> &'static [&'static str] {
    match asset_type {
        "application" => &["environment", "owner", "dependencies"],
        "network" | "storage" => &["environment", "location"],
        // Not a 6R candidate: nothing is missing for an assessment it never gets.
        crate::catalogue::END_USER_DEVICE => &[],
        _ => &[
            "operating_system",
            "cpu_cores",
            "memory_gb",
            "storage_gb",
            "environment",
        ],
    }
}

/// The asset fields the phase reads.
#[derive(Debug, Clone, Default)]
pub struct AssetFacts {
    pub asset_type: String,
    pub name: String,
    pub operating_system: Option<String>,
    pub os_version: Option<String>,
    pub technology_stack: Option<String>,
    pub description: Option<String>,
    pub model: Option<String>,
    pub end_of_support_date: Option<String>,
    pub end_of_life_date: Option<String>,
    /// Field → present, for the 6R check.
    pub present: BTreeMap<&'static str, bool>,
}

/// An operating system as its product and version ("Windows Server 2019",
/// "Red Hat Enterprise Linux 8"), from however an export spelled it; None
/// when the catalogue knows no product in it.
pub fn os_label(operating_system: Option<&str>, os_version: Option<&str>) -> Option<String> {
    let text = [operating_system, os_version]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    CATALOGUE
        .find(&text, ProductKind::Os, "operating_system")
        .map(|c| c.label())
}

/// Judges one asset on `as_of`.
pub fn assess(facts: &AssetFacts, as_of: &str) -> Assessment {
    let mut components: Vec<Component> = Vec::new();
    let os_text = [
        facts.operating_system.as_deref(),
        facts.os_version.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    if let Some(c) = CATALOGUE.find(&os_text, ProductKind::Os, "operating_system") {
        components.push(c);
    }
    let mut db_texts: Vec<(&str, &str)> = Vec::new();
    if let Some(t) = &facts.technology_stack {
        db_texts.push(("technology_stack", t));
    }
    if facts.asset_type == "database" {
        db_texts.push(("name", &facts.name));
        for (field, value) in [("description", &facts.description), ("model", &facts.model)] {
            if let Some(v) = value {
                db_texts.push((field, v));
            }
        }
        if !os_text.is_empty() && components.is_empty() {
            db_texts.push(("operating_system", &os_text));
        }
    }
    for (field, text) in db_texts {
        for c in CATALOGUE.find_all(text, ProductKind::Database, field) {
            if !components.iter().any(|k| k.product == c.product) {
                components.push(c);
            }
        }
    }
    let judged: Vec<(SupportStatus, &Component)> =
        components.iter().map(|c| (c.status(as_of), c)).collect();
    let worst = judged
        .iter()
        .filter(|(s, _)| *s != SupportStatus::Unknown)
        .max_by(|a, b| {
            a.0.cmp(&b.0).then_with(|| {
                // Of two equally bad components, the one whose support ended first.
                b.1.last_end().cmp(&a.1.last_end())
            })
        });
    let (status, based_on, support_ends) = match worst {
        Some((status, c)) => (*status, c.label(), c.last_end().map(str::to_string)),
        None => match (&facts.end_of_support_date, &facts.end_of_life_date) {
            (None, None) => (
                SupportStatus::Unknown,
                match components.first() {
                    Some(c) => format!("{} (version not in the catalogue)", c.product),
                    None => "no operating system or database the catalogue knows".into(),
                },
                None,
            ),
            (eos, eol) => {
                let status = SupportStatus::on(as_of, eos.as_deref(), eol.as_deref());
                let field = if eos.is_some() {
                    "end_of_support_date"
                } else {
                    "end_of_life_date"
                };
                (
                    status,
                    format!("{field} from the source"),
                    eol.clone().or_else(|| eos.clone()),
                )
            }
        },
    };
    let score = score(status, &judged, as_of);
    let sixr_missing: Vec<&'static str> = sixr_required(&facts.asset_type)
        .iter()
        .copied()
        .filter(|f| !facts.present.get(f).copied().unwrap_or(false))
        .collect();
    let details = json!({
        "based_on": based_on,
        "components": components.iter().map(|c| c.to_json(as_of)).collect::<Vec<_>>(),
        "source_dates": {
            "end_of_support_date": facts.end_of_support_date,
            "end_of_life_date": facts.end_of_life_date,
        },
        "support_ends": support_ends,
        "sixr_missing": sixr_missing,
        "catalogue": CATALOGUE.info.compiled,
    });
    Assessment {
        status,
        score,
        sixr_missing,
        details,
        based_on,
        support_ends,
    }
}

/// A verdict with its details as the assets row stores them.
pub struct Judged {
    pub assessment: Assessment,
    pub details: String,
}

/// Distinct verdicts remembered per thread; a machine's verdict rests on
/// few of its facts, so an export of a million servers has a few hundred.
const MEMO_ENTRIES: usize = 1_024;

/// The inputs `assess` reads, in a fixed order: the name, description and
/// model only count for a database.
fn memo_inputs(facts: &AssetFacts) -> ([Option<&str>; 9], u16) {
    let database = facts.asset_type == "database";
    fn only_if(database: bool, v: Option<&str>) -> Option<&str> {
        v.filter(|_| database)
    }
    let only_database = |v| only_if(database, v);
    let inputs = [
        Some(facts.asset_type.as_str()),
        only_database(Some(facts.name.as_str())),
        facts.operating_system.as_deref(),
        facts.os_version.as_deref(),
        facts.technology_stack.as_deref(),
        only_database(facts.description.as_deref()),
        only_database(facts.model.as_deref()),
        facts.end_of_support_date.as_deref(),
        facts.end_of_life_date.as_deref(),
    ];
    // Of the presence, only the fields 6R needs for this type are read.
    let mut present = 0u16;
    for (bit, field) in sixr_required(&facts.asset_type).iter().enumerate() {
        present |= u16::from(facts.present.get(field).copied().unwrap_or(false)) << bit;
    }
    (inputs, present)
}

/// A remembered verdict with the inputs it was judged from, checked on a hit.
struct Remembered {
    inputs: Vec<Option<String>>,
    present: u16,
    judged: std::sync::Arc<Judged>,
}

#[derive(Default)]
struct VerdictMemo {
    as_of: String,
    /// By a hash of the inputs.
    entries: foldhash::HashMap<u64, Remembered>,
}

thread_local! {
    static MEMO: std::cell::RefCell<VerdictMemo> = Default::default();
}

/// `assess`, with its details as text, remembered on this thread for
/// machines whose facts are the same (the inventory's writer and the
/// phase judge a million machines; the verdict is a pure function of the
/// facts, the day and the compiled catalogue).
pub fn assess_remembered(facts: &AssetFacts, as_of: &str) -> std::sync::Arc<Judged> {
    use std::hash::{BuildHasher, Hash, Hasher};
    let (inputs, present) = memo_inputs(facts);
    let key = {
        let mut h = foldhash::fast::FixedState::with_seed(0x5e2d).build_hasher();
        inputs.hash(&mut h);
        present.hash(&mut h);
        h.finish()
    };
    let judge = || {
        let assessment = assess(facts, as_of);
        let details = assessment.details.to_string();
        std::sync::Arc::new(Judged {
            assessment,
            details,
        })
    };
    MEMO.with_borrow_mut(|memo| {
        if memo.as_of != as_of {
            memo.entries.clear();
            memo.as_of = as_of.to_string();
        }
        if let Some(known) = memo.entries.get(&key) {
            let same = known.present == present
                && known
                    .inputs
                    .iter()
                    .map(Option::as_deref)
                    .eq(inputs.iter().copied());
            // A hash collision is judged afresh and not remembered.
            return if same { known.judged.clone() } else { judge() };
        }
        if memo.entries.len() >= MEMO_ENTRIES {
            memo.entries.clear();
        }
        let judged = judge();
        let remembered = Remembered {
            inputs: inputs.iter().map(|v| v.map(str::to_string)).collect(),
            present,
            judged: judged.clone(),
        };
        memo.entries.insert(key, remembered);
        judged
    })
}

/// 0 (nothing to do) to 100 (out of support): end of life 100, extended
/// support 70, supported 40 when standard support ends within a year of
/// `as_of`, 20 within two, else 0; unknown has no score.
fn score(
    status: SupportStatus,
    judged: &[(SupportStatus, &Component)],
    as_of: &str,
) -> Option<f64> {
    Some(match status {
        SupportStatus::Unknown => return None,
        SupportStatus::EndOfLife => 100.0,
        SupportStatus::ExtendedSupport => 70.0,
        SupportStatus::Supported => {
            let soonest = judged
                .iter()
                .filter_map(|(_, c)| c.support_end.as_deref())
                .min();
            let year = |n: i32| shift_years(as_of, n);
            match soonest {
                Some(end) if end <= year(1).as_str() => 40.0,
                Some(end) if end <= year(2).as_str() => 20.0,
                _ => 0.0,
            }
        }
    })
}

/// "2026-11-24" plus `n` years, as text (Feb 29 becomes Feb 28).
fn shift_years(date: &str, n: i32) -> String {
    let year: i32 = date.get(..4).and_then(|y| y.parse().ok()).unwrap_or(2000);
    let rest = date.get(4..).unwrap_or("-01-01");
    let rest = if rest == "-02-29" { "-02-28" } else { rest };
    format!("{:04}{rest}", year + n)
}

/// Today in UTC as YYYY-MM-DD.
pub fn today() -> String {
    let now = time::OffsetDateTime::now_utc().date();
    format!(
        "{:04}-{:02}-{:02}",
        now.year(),
        u8::from(now.month()),
        now.day()
    )
}

/// Checks a YYYY-MM-DD date given on the command line.
pub fn parse_as_of(raw: &str) -> Result<String, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(raw.trim(), format)
        .map(|_| raw.trim().to_string())
        .map_err(|_| format!("'{raw}' is not a date: write it as YYYY-MM-DD, e.g. 2026-11-24"))
}

/// Offenders kept while the assets stream by: the list is cut to this
/// length whenever it reaches ten times it.
const WORST_KEPT: usize = 20;

/// Runs the phase over the engagement of `ids`, judging support on `as_of`
/// (today when None). Assets are written only where the verdict changed.
/// Machines are judged first, streamed and written as they are read; then
/// each application with no product of its own takes the worst verdict of
/// the machines it runs on, read back from the machines just written.
pub fn run(ctx: &PhaseCtx, as_of: Option<&str>) -> rusqlite::Result<TechDebtOutcome> {
    let as_of = as_of.map(str::to_string).unwrap_or_else(today);
    let engagement = &ctx.tenant.engagement_id;
    let tx = ctx.conn.unchecked_transaction()?;
    let mut judge = Judge {
        conn: &tx,
        as_of: &as_of,
        outcome: TechDebtOutcome {
            as_of: as_of.clone(),
            ..Default::default()
        },
    };
    let started = std::time::Instant::now();
    let machines = judge.machines(engagement)?;
    tracing::debug!(
        "tech_debt: machines judged in {:.2}s",
        started.elapsed().as_secs_f64()
    );
    judge.applications(engagement, &machines)?;
    drop(machines);
    tracing::debug!(
        "tech_debt: applications judged at {:.2}s",
        started.elapsed().as_secs_f64()
    );
    let mut outcome = judge.outcome;
    sort_worst(&mut outcome.worst);
    outcome.analysis = analysis(&outcome);
    tx.commit()?;
    Ok(outcome)
}

/// The worst first: end of life before extended support, the earliest end
/// first, then by name.
fn sort_worst(worst: &mut Vec<Offender>) {
    worst.sort_by(|a, b| {
        b.status
            .cmp(&a.status)
            .then_with(|| a.support_ends.cmp(&b.support_ends))
            .then_with(|| a.name.cmp(&b.name))
    });
    worst.truncate(WORST_KEPT);
}

/// Assets judged per batch handed to the judging thread.
const JUDGE_BATCH: usize = 1_000;
/// Batches in flight each way between the reading and the judging thread.
const JUDGE_QUEUE: usize = 4;

/// An asset as read: id, facts, the verdict stored now.
type ReadAsset = (String, AssetFacts, Stored);
/// A verdict to write: id, support_status, score, sixr_ready, details.
type Changed = (String, StoredForm, String);

/// The machines' verdicts that an application can inherit (supported,
/// extended support, end of life), found by a 64-bit hash of the machine's
/// id. Kept compact (about 40 bytes a machine: the texts interned or in one
/// arena, the index a sorted array) so a million machines cost tens of
/// megabytes rather than their rows.
#[derive(Default)]
struct InheritableVerdicts {
    /// (id hash, index into `verdicts`), sorted by `seal`.
    by_id: Vec<(u64, u32)>,
    verdicts: Vec<InheritableVerdict>,
    /// Machine names, one after the other.
    names: String,
    /// What verdicts rest on ("Windows Server 2016") and the days support
    /// ends, each kept once.
    texts: Vec<String>,
    text_index: foldhash::HashMap<String, u32>,
}

#[derive(Clone, Copy)]
struct InheritableVerdict {
    status: SupportStatus,
    /// NaN when there is no score.
    score: f64,
    /// Into `texts`; u32::MAX when no end is known.
    support_ends: u32,
    based_on: u32,
    /// Into `names`.
    name_at: u32,
    name_len: u32,
}

/// A machine's verdict as an application takes it.
struct MachineVerdict<'v> {
    status: SupportStatus,
    score: Option<f64>,
    support_ends: Option<&'v str>,
    based_on: &'v str,
    name: &'v str,
}

impl InheritableVerdicts {
    fn key(id: &str) -> u64 {
        use std::hash::BuildHasher;
        foldhash::fast::FixedState::with_seed(0x7ec4_deb7).hash_one(id)
    }

    fn text(&mut self, text: &str) -> u32 {
        if let Some(&i) = self.text_index.get(text) {
            return i;
        }
        let i = self.texts.len() as u32;
        self.texts.push(text.to_string());
        self.text_index.insert(text.to_string(), i);
        i
    }

    fn note(&mut self, id: &str, name: &str, verdict: &Assessment) {
        if verdict.status == SupportStatus::Unknown {
            return;
        }
        let based_on = self.text(&verdict.based_on);
        let support_ends = match &verdict.support_ends {
            Some(day) => self.text(day),
            None => u32::MAX,
        };
        let name_at = self.names.len() as u32;
        self.names.push_str(name);
        self.by_id.push((Self::key(id), self.verdicts.len() as u32));
        self.verdicts.push(InheritableVerdict {
            status: verdict.status,
            score: verdict.score.unwrap_or(f64::NAN),
            support_ends,
            based_on,
            name_at,
            name_len: name.len() as u32,
        });
    }

    /// Readies the look-up once every machine is noted.
    fn seal(&mut self) {
        self.by_id.sort_unstable();
        self.text_index = Default::default();
    }

    /// Where `key` is or would be in `by_id`. The keys are uniform hashes,
    /// so the search starts where the key's value falls and widens from
    /// there: a couple of probes instead of the twenty cache misses of a
    /// binary search over a million machines, looked up once per edge.
    fn position(&self, key: u64) -> usize {
        let n = self.by_id.len();
        let guess = ((u128::from(key) * n as u128) >> 64) as usize;
        let (mut lo, mut hi) = (guess, guess);
        let mut step = 8;
        while lo > 0 && self.by_id[lo - 1].0 >= key {
            lo = lo.saturating_sub(step);
            step *= 2;
        }
        step = 8;
        while hi < n && self.by_id[hi].0 < key {
            hi = (hi + step).min(n);
            step *= 2;
        }
        lo + self.by_id[lo..hi].partition_point(|(k, _)| *k < key)
    }

    fn get(&self, id: &str) -> Option<MachineVerdict<'_>> {
        let key = Self::key(id);
        let at = self.position(key);
        let &(found, i) = self.by_id.get(at)?;
        if found != key {
            return None;
        }
        let v = self.verdicts[i as usize];
        let at = v.name_at as usize;
        Some(MachineVerdict {
            status: v.status,
            score: (!v.score.is_nan()).then_some(v.score),
            support_ends: self.texts.get(v.support_ends as usize).map(String::as_str),
            based_on: &self.texts[v.based_on as usize],
            name: &self.names[at..at + v.name_len as usize],
        })
    }
}

/// Which of two machines' verdicts an application takes: the worse status;
/// of two equally bad, one with no end date, then the earliest end, then by
/// name (the order the phase has always used).
fn worse(a: &MachineVerdict, b: &MachineVerdict) -> bool {
    let order = a
        .status
        .cmp(&b.status)
        .reverse()
        .then_with(|| a.support_ends.is_some().cmp(&b.support_ends.is_some()))
        .then_with(|| a.support_ends.cmp(&b.support_ends))
        .then_with(|| a.name.cmp(b.name));
    order == std::cmp::Ordering::Less
}

struct Judge<'c> {
    conn: &'c Connection,
    as_of: &'c str,
    outcome: TechDebtOutcome,
}

/// The phase's reading of an engagement's assets, machines or applications.
/// Updating a row just read is safe during SQLite's table scan; the unary +
/// keeps SQLite from walking an index and seeking each row.
fn select_assets(applications: bool) -> String {
    format!(
        "SELECT a.id, {kind}, a.name, a.operating_system, a.os_version, a.technology_stack,
                a.description, a.model, a.end_of_support_date, a.end_of_life_date,
                a.cpu_cores IS NOT NULL, a.memory_gb IS NOT NULL, a.storage_gb IS NOT NULL,
                a.environment IS NOT NULL, a.business_owner IS NOT NULL,
                a.technical_owner IS NOT NULL, a.location IS NOT NULL, a.datacenter IS NOT NULL,
                EXISTS (SELECT 1 FROM asset_dependencies d WHERE d.asset_id = a.id),
                a.support_status, a.tech_debt_score, a.sixr_ready, a.tech_debt_details
         FROM assets a WHERE +a.engagement_id = ?1 AND (a.asset_type = 'application') = {}",
        i32::from(applications),
        kind = crate::catalogue::KIND_SQL.replace("custom_attributes", "a.custom_attributes"),
    )
}

const UPDATE_VERDICT: &str = "UPDATE assets SET support_status = ?2, tech_debt_score = ?3,
       sixr_ready = ?4, tech_debt_details = ?5 WHERE id = ?1";

/// One row of `select_assets`.
fn read_asset(r: &rusqlite::Row) -> rusqlite::Result<ReadAsset> {
    let id: String = r.get(0)?;
    let facts = AssetFacts {
        asset_type: r.get(1)?,
        name: r.get(2)?,
        operating_system: r.get(3)?,
        os_version: r.get(4)?,
        technology_stack: r.get(5)?,
        description: r.get(6)?,
        model: r.get(7)?,
        end_of_support_date: r.get(8)?,
        end_of_life_date: r.get(9)?,
        present: {
            // Columns 10 to 17 say whether these are written.
            const WRITTEN: [&str; 8] = [
                "cpu_cores",
                "memory_gb",
                "storage_gb",
                "environment",
                "business_owner",
                "technical_owner",
                "location",
                "datacenter",
            ];
            let mut flags = [false; 8];
            for (i, flag) in flags.iter_mut().enumerate() {
                *flag = r.get(10 + i)?;
            }
            let has_os = r.get_ref(3)?.as_str_or_null()?.is_some();
            let written = |name: &str| match WRITTEN.iter().position(|w| *w == name) {
                Some(i) => flags[i],
                None => name == "operating_system" && has_os,
            };
            presence(written, r.get(18)?)
        },
    };
    let stored: Stored = (r.get(19)?, r.get(20)?, r.get(21)?, r.get(22)?);
    Ok((id, facts, stored))
}

impl Judge<'_> {
    /// Judges the engagement's machines and writes each verdict that
    /// changed. This thread reads and writes SQLite; a second one judges, so
    /// the two overlap. Returns the verdicts applications may inherit.
    fn machines(&mut self, engagement: &str) -> rusqlite::Result<InheritableVerdicts> {
        let mut stmt = self.conn.prepare(&select_assets(false))?;
        let mut update = self.conn.prepare(UPDATE_VERDICT)?;
        let (to_judge, judge_queue) = crossbeam_channel::bounded::<Vec<ReadAsset>>(JUDGE_QUEUE);
        let (to_write, write_queue) = crossbeam_channel::bounded::<Vec<Changed>>(JUDGE_QUEUE);
        let as_of = self.as_of;
        let outcome = &mut self.outcome;
        let mut updated = 0u64;
        let inheritable = std::thread::scope(|scope| -> rusqlite::Result<_> {
            let judging = scope.spawn(move || {
                let mut inheritable = InheritableVerdicts::default();
                for batch in judge_queue.iter() {
                    let mut changed = Vec::new();
                    for (id, facts, stored) in batch {
                        let judged = assess_remembered(&facts, as_of);
                        let verdict = &judged.assessment;
                        inheritable.note(&id, &facts.name, verdict);
                        if let Some((fresh, details)) =
                            settle(outcome, &facts, verdict, &judged.details, &stored)
                        {
                            changed.push((id, fresh, details));
                        }
                    }
                    if to_write.send(changed).is_err() {
                        break; // the reader failed
                    }
                }
                inheritable.seal();
                inheritable
            });
            // Owned here, so an early return drops both ends and the judging
            // thread stops instead of waiting for more work.
            let (to_judge, write_queue) = (to_judge, write_queue);
            let mut write = |changed: Vec<Changed>| -> rusqlite::Result<()> {
                for (id, fresh, details) in changed {
                    update.execute(params![id, fresh.0, fresh.1, fresh.2, details])?;
                    updated += 1;
                }
                Ok(())
            };
            let mut hand_over = |batch: Vec<ReadAsset>| -> rusqlite::Result<()> {
                crate::work_queue::hand_over(&to_judge, &write_queue, batch, &mut write)
            };
            let mut rows = stmt.query([engagement])?;
            let mut batch = Vec::with_capacity(JUDGE_BATCH);
            while let Some(r) = rows.next()? {
                batch.push(read_asset(r)?);
                if batch.len() == JUDGE_BATCH {
                    hand_over(std::mem::replace(
                        &mut batch,
                        Vec::with_capacity(JUDGE_BATCH),
                    ))?;
                }
            }
            hand_over(batch)?;
            drop(to_judge);
            for changed in write_queue.iter() {
                write(changed)?;
            }
            Ok(judging
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
        })?;
        self.outcome.updated += updated;
        Ok(inheritable)
    }

    /// Judges the engagement's applications; one with no product of its own
    /// takes the worst verdict of the machines it runs on.
    fn applications(
        &mut self,
        engagement: &str,
        machines: &InheritableVerdicts,
    ) -> rusqlite::Result<()> {
        let mut stmt = self.conn.prepare(&select_assets(true))?;
        let mut update = self.conn.prepare(UPDATE_VERDICT)?;
        // The covering unique index (asset_id, depends_on_asset_id, ...) answers this alone.
        let mut runs_on = self
            .conn
            .prepare("SELECT depends_on_asset_id FROM asset_dependencies WHERE asset_id = ?1")?;
        let mut rows = stmt.query([engagement])?;
        while let Some(r) = rows.next()? {
            let (id, facts, stored) = read_asset(r)?;
            let mut verdict = assess(&facts, self.as_of);
            if verdict.status == SupportStatus::Unknown {
                let mut worst: Option<MachineVerdict> = None;
                let mut targets = runs_on.query([&id])?;
                while let Some(t) = targets.next()? {
                    let Some(machine) = t.get_ref(0)?.as_str().ok().and_then(|m| machines.get(m))
                    else {
                        continue;
                    };
                    if worst.as_ref().is_none_or(|w| worse(&machine, w)) {
                        worst = Some(machine);
                    }
                }
                if let Some(machine) = worst {
                    inherit(&mut verdict, &machine);
                }
            }
            let details = verdict.details.to_string();
            if let Some((fresh, details)) =
                settle(&mut self.outcome, &facts, &verdict, &details, &stored)
            {
                update.execute(params![id, fresh.0, fresh.1, fresh.2, details])?;
                self.outcome.updated += 1;
            }
        }
        Ok(())
    }
}

/// Gives an application the verdict of the machine it runs on.
fn inherit(verdict: &mut Assessment, machine: &MachineVerdict) {
    verdict.status = machine.status;
    verdict.score = machine.score;
    verdict.support_ends = machine.support_ends.map(str::to_string);
    verdict.based_on = format!("runs on {} ({})", machine.name, machine.based_on);
    verdict.details["based_on"] = json!(verdict.based_on);
    verdict.details["support_ends"] = json!(verdict.support_ends);
    verdict.details["inherited_from"] = json!(machine.name);
}

/// Counts a verdict and keeps it among the worst when it is one; returns
/// what to store when it differs from what is stored.
fn settle(
    outcome: &mut TechDebtOutcome,
    facts: &AssetFacts,
    verdict: &Assessment,
    fresh_details: &str,
    stored: &Stored,
) -> Option<(StoredForm, String)> {
    let fresh = stored_form(verdict, &facts.asset_type);
    match fresh.2 {
        "ready" => outcome.sixr_ready += 1,
        "not_applicable" => outcome.sixr_not_applicable += 1,
        _ => outcome.sixr_not_ready += 1,
    }
    outcome.assets += 1;
    *outcome
        .by_status
        .entry(verdict.status.name().to_string())
        .or_default() += 1;
    if verdict.status != SupportStatus::Unknown {
        match outcome.by_product.get_mut(&verdict.based_on) {
            Some(n) => *n += 1,
            None => {
                outcome.by_product.insert(verdict.based_on.clone(), 1);
            }
        }
    }
    for field in &verdict.sixr_missing {
        *outcome.missing_fields.entry(field).or_default() += 1;
    }
    if matches!(
        verdict.status,
        SupportStatus::EndOfLife | SupportStatus::ExtendedSupport
    ) {
        outcome.worst.push(Offender {
            name: facts.name.clone(),
            asset_type: facts.asset_type.clone(),
            status: verdict.status,
            score: verdict.score,
            based_on: verdict.based_on.clone(),
            support_ends: verdict.support_ends.clone(),
        });
        if outcome.worst.len() >= WORST_KEPT * 10 {
            sort_worst(&mut outcome.worst);
        }
    }
    // The text this program writes is compared as text; other text
    // (an older intake's, re-spaced) as JSON values.
    let same_details = match stored.3.as_deref() {
        Some(text) if text == fresh_details => true,
        Some(text) => serde_json::from_str::<Value>(text).ok().as_ref() == Some(&verdict.details),
        None => false,
    };
    let changed = stored.0.as_deref() != Some(fresh.0)
        || stored.1 != fresh.1
        || stored.2.as_deref() != Some(fresh.2)
        || !same_details;
    changed.then(|| (fresh, fresh_details.to_string()))
}

/// A machine's verdict as the assets row stores it: support_status,
/// tech_debt_score, sixr_ready and tech_debt_details. The inventory writes
/// it with the row, so this phase rewrites a machine only when its verdict
/// changed since (another day, `--as-of`, a catalogue update).
pub struct StoredVerdict {
    pub support_status: &'static str,
    pub score: Option<f64>,
    pub sixr_ready: &'static str,
    pub details: String,
}

/// The verdict to store for an asset's facts on `as_of`.
pub fn verdict_to_store(facts: &AssetFacts, as_of: &str) -> StoredVerdict {
    let judged = assess_remembered(facts, as_of);
    let (support_status, score, sixr_ready) = stored_form(&judged.assessment, &facts.asset_type);
    StoredVerdict {
        support_status,
        score,
        sixr_ready,
        details: judged.details.clone(),
    }
}

/// The presence the 6R check reads, from a lookup of written columns: the
/// same expressions as the phase's SELECT.
pub fn presence(
    written: impl Fn(&str) -> bool,
    has_dependencies: bool,
) -> BTreeMap<&'static str, bool> {
    BTreeMap::from([
        ("operating_system", written("operating_system")),
        ("cpu_cores", written("cpu_cores")),
        ("memory_gb", written("memory_gb")),
        ("storage_gb", written("storage_gb")),
        ("environment", written("environment")),
        (
            "owner",
            written("business_owner") || written("technical_owner"),
        ),
        ("location", written("location") || written("datacenter")),
        ("dependencies", has_dependencies),
    ])
}

/// support_status, tech_debt_score and sixr_ready as stored.
type StoredForm = (&'static str, Option<f64>, &'static str);

/// `kind`: the asset's kind; an end-user device is never a 6R candidate.
fn stored_form(verdict: &Assessment, kind: &str) -> StoredForm {
    let sixr = if kind == crate::catalogue::END_USER_DEVICE {
        "not_applicable"
    } else if verdict.sixr_missing.is_empty() {
        "ready"
    } else {
        "not_ready"
    };
    (verdict.status.name(), verdict.score, sixr)
}

/// The analysis stored in discovery_flows.tech_debt_analysis.
fn analysis(outcome: &TechDebtOutcome) -> Value {
    json!({
        "as_of": outcome.as_of,
        "catalogue": { "compiled": CATALOGUE.info.compiled, "source": CATALOGUE.info.source },
        "assets": outcome.assets,
        "by_status": outcome.by_status,
        "by_product": outcome.by_product,
        "sixr_ready": { "ready": outcome.sixr_ready, "not_ready": outcome.sixr_not_ready, "not_applicable": outcome.sixr_not_applicable, "missing_fields": outcome.missing_fields },
        "worst": outcome.worst,
    })
}

impl PhaseOutcome for TechDebtOutcome {
    const PHASE: Phase = Phase::TechDebt;

    fn summary(&self) -> Value {
        json!({ "as_of": self.as_of, "assets": self.assets, "updated": self.updated,
            "by_status": self.by_status, "sixr_ready": self.sixr_ready })
    }

    /// The analysis is also the flow's tech_debt_analysis.
    fn record(&self, ctx: &PhaseCtx) -> rusqlite::Result<()> {
        ctx.conn.execute(
            "UPDATE discovery_flows SET tech_debt_analysis = ?2 WHERE id = ?1",
            params![ctx.ids.discovery_flow_id, self.analysis.to_string()],
        )?;
        flow::complete_phase(ctx.conn, &ctx.ids, Self::PHASE, &self.summary())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict<'v>(
        status: SupportStatus,
        ends: Option<&'v str>,
        name: &'v str,
    ) -> MachineVerdict<'v> {
        MachineVerdict {
            status,
            score: None,
            support_ends: ends,
            based_on: "",
            name,
        }
    }

    #[test]
    fn an_application_inherits_the_worst_status_then_the_earliest_end_then_the_first_name() {
        let eol = verdict(SupportStatus::EndOfLife, Some("2020-01-14"), "b");
        let extended = verdict(SupportStatus::ExtendedSupport, Some("2019-01-01"), "a");
        assert!(worse(&eol, &extended) && !worse(&extended, &eol));
        let later = verdict(SupportStatus::EndOfLife, Some("2023-01-10"), "a");
        assert!(worse(&eol, &later), "the earlier end wins among equals");
        let undated = verdict(SupportStatus::EndOfLife, None, "z");
        assert!(
            worse(&undated, &eol),
            "as the SQL order did: no end date first"
        );
        let same = verdict(SupportStatus::EndOfLife, Some("2020-01-14"), "a");
        assert!(worse(&same, &eol) && !worse(&eol, &same), "then by name");
        assert!(!worse(&eol, &eol));
    }

    #[test]
    fn machines_are_found_by_id_with_their_product_kept_once() {
        let mut verdicts = InheritableVerdicts::default();
        let facts = AssetFacts {
            asset_type: "server".into(),
            name: "old-host".into(),
            operating_system: Some("Windows Server 2008 R2".into()),
            ..Default::default()
        };
        let judged = assess(&facts, "2026-11-24");
        verdicts.note("id-1", "old-host", &judged);
        verdicts.note("id-2", "old-host-2", &judged);
        let unknown = assess(&AssetFacts::default(), "2026-11-24");
        verdicts.note("id-3", "nothing-known", &unknown);
        verdicts.seal();
        // One product and one end-of-support day, each kept once.
        assert_eq!(verdicts.texts.len(), 2);
        let found = verdicts.get("id-2").unwrap();
        assert_eq!(found.name, "old-host-2");
        assert_eq!(found.status, judged.status);
        assert_eq!(found.support_ends, judged.support_ends.as_deref());
        assert_eq!(found.based_on, judged.based_on);
        assert_eq!(found.score, judged.score);
        assert_eq!(verdicts.get("id-1").unwrap().name, "old-host");
        assert!(
            verdicts.get("id-3").is_none(),
            "unknown verdicts are not inherited"
        );
        assert!(verdicts.get("id-4").is_none());
    }

    #[test]
    fn a_remembered_verdict_is_the_verdict_its_facts_give() {
        let server = |os: &str, version: Option<&str>, cores: bool| AssetFacts {
            asset_type: "server".into(),
            name: format!("host-{os}"),
            operating_system: Some(os.into()),
            os_version: version.map(str::to_string),
            present: presence(
                |f| f == "cpu_cores" && cores || f == "operating_system",
                false,
            ),
            ..Default::default()
        };
        let database = |name: &str| AssetFacts {
            asset_type: "database".into(),
            name: name.into(),
            ..Default::default()
        };
        let cases = [
            server("Windows Server 2012 R2", None, true),
            server("Windows Server 2012 R2", None, false),
            server("Windows Server 2012 R2", Some("6.3"), true),
            server("Red Hat Enterprise Linux", Some("7.9"), true),
            server("Red Hat Enterprise Linux", Some("9.2"), true),
            // Same facts but the name: a server's name is not read.
            AssetFacts {
                name: "another".into(),
                ..server("Red Hat Enterprise Linux", Some("9.2"), true)
            },
            // A database is judged by its name too.
            database("SQL Server 2008 R2 cluster"),
            database("PostgreSQL 16 main"),
            AssetFacts {
                end_of_support_date: Some("2020-01-01".into()),
                ..AssetFacts::default()
            },
            AssetFacts::default(),
        ];
        for as_of in ["2026-11-24", "2031-01-01"] {
            // Twice: the second time every verdict comes from the memo.
            for _ in 0..2 {
                for facts in &cases {
                    let fresh = assess(facts, as_of);
                    let remembered = assess_remembered(facts, as_of);
                    let r = &remembered.assessment;
                    assert_eq!(r.status, fresh.status, "{facts:?}");
                    assert_eq!(r.score, fresh.score);
                    assert_eq!(r.sixr_missing, fresh.sixr_missing);
                    assert_eq!(r.based_on, fresh.based_on);
                    assert_eq!(r.support_ends, fresh.support_ends);
                    assert_eq!(remembered.details, fresh.details.to_string());
                }
            }
        }
    }

    #[test]
    fn the_search_from_a_hash_finds_what_a_binary_search_finds() {
        let mut verdicts = InheritableVerdicts::default();
        let judged = assess(
            &AssetFacts {
                asset_type: "server".into(),
                operating_system: Some("Windows Server 2012 R2".into()),
                ..Default::default()
            },
            "2026-11-24",
        );
        for i in 0..20_000 {
            verdicts.note(&format!("machine-{i}"), &format!("host-{i}"), &judged);
        }
        verdicts.seal();
        let binary = |key: u64| verdicts.by_id.partition_point(|(k, _)| *k < key);
        // Every stored key, the keys either side of it, and the extremes.
        let mut probes = vec![0, 1, u64::MAX - 1, u64::MAX];
        for &(k, _) in &verdicts.by_id {
            probes.extend([k.wrapping_sub(1), k, k.wrapping_add(1)]);
        }
        for key in probes {
            assert_eq!(verdicts.position(key), binary(key), "key {key}");
        }
        for i in (0..20_000).step_by(997) {
            assert_eq!(
                verdicts.get(&format!("machine-{i}")).unwrap().name,
                format!("host-{i}")
            );
        }
        assert!(verdicts.get("machine-20000").is_none());
        assert_eq!(InheritableVerdicts::default().position(42), 0);
    }
}
