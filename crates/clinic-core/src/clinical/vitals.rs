//! Vital signs: each kind with its LOINC code and UCUM unit (the FHIR vital-signs profile's
//! codes), the values no body can have (refused, naming the field), and the ranges by age
//! band outside which a value is flagged low or high. BMI is computed from weight and height.

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, Row};
use serde::{Deserialize, Serialize};
use specta::Type;

use super::{Field, Table};
use crate::error::{Error, Reason, Result};
use crate::ids::new_id;
use crate::store::Write;

/// The FHIR vital-signs panel code for blood pressure (systolic and diastolic together).
pub const BP_PANEL_LOINC: &str = "85354-9";

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Type,
)]
#[serde(rename_all = "snake_case")]
pub enum VitalKind {
    Temperature,
    Systolic,
    Diastolic,
    HeartRate,
    RespiratoryRate,
    Spo2,
    Weight,
    Height,
    Bmi,
    HeadCircumference,
    BloodGlucose,
}

crate::text_column!(VitalKind);

impl VitalKind {
    pub const ALL: [VitalKind; 11] = [
        VitalKind::Temperature,
        VitalKind::Systolic,
        VitalKind::Diastolic,
        VitalKind::HeartRate,
        VitalKind::RespiratoryRate,
        VitalKind::Spo2,
        VitalKind::Weight,
        VitalKind::Height,
        VitalKind::Bmi,
        VitalKind::HeadCircumference,
        VitalKind::BloodGlucose,
    ];

    pub fn loinc(self) -> &'static str {
        use VitalKind::*;
        match self {
            Temperature => "8310-5",
            Systolic => "8480-6",
            Diastolic => "8462-4",
            HeartRate => "8867-4",
            RespiratoryRate => "9279-1",
            Spo2 => "2708-6",
            Weight => "29463-7",
            Height => "8302-2",
            Bmi => "39156-5",
            HeadCircumference => "9843-4",
            // Glucose [Moles/volume] in Blood.
            BloodGlucose => "15074-8",
        }
    }

    /// The UCUM unit values are stored and shown in.
    pub fn ucum(self) -> &'static str {
        use VitalKind::*;
        match self {
            Temperature => "Cel",
            Systolic | Diastolic => "mm[Hg]",
            HeartRate | RespiratoryRate => "/min",
            Spo2 => "%",
            Weight => "kg",
            Height | HeadCircumference => "cm",
            Bmi => "kg/m2",
            BloodGlucose => "mmol/L",
        }
    }

    fn field(self) -> Field {
        use VitalKind::*;
        match self {
            Temperature => Field::Temperature,
            Systolic => Field::Systolic,
            Diastolic => Field::Diastolic,
            HeartRate => Field::HeartRate,
            RespiratoryRate => Field::RespiratoryRate,
            Spo2 => Field::Spo2,
            Weight => Field::Weight,
            Height => Field::Height,
            Bmi => Field::Bmi,
            HeadCircumference => Field::HeadCircumference,
            BloodGlucose => Field::BloodGlucose,
        }
    }

    /// Values no living patient has (or no instrument reads): refused as typing errors.
    fn possible(self) -> (f64, f64) {
        use VitalKind::*;
        match self {
            Temperature => (25.0, 45.0),
            Systolic => (40.0, 300.0),
            Diastolic => (20.0, 200.0),
            HeartRate => (20.0, 300.0),
            RespiratoryRate => (2.0, 100.0),
            Spo2 => (40.0, 100.0),
            Weight => (0.3, 400.0),
            Height => (20.0, 260.0),
            Bmi => (5.0, 150.0),
            HeadCircumference => (20.0, 70.0),
            BloodGlucose => (0.5, 60.0),
        }
    }

    /// Decimal places kept.
    fn decimals(self) -> i32 {
        use VitalKind::*;
        match self {
            Temperature | Weight | Height | Bmi | HeadCircumference | BloodGlucose => 1,
            _ => 0,
        }
    }
}

/// Age bands the normal ranges differ by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum AgeBand {
    /// Under 28 days.
    Newborn,
    /// 28 days to 1 year.
    Infant,
    /// 1 to 3 years.
    Toddler,
    /// 3 to 6 years.
    Preschool,
    /// 6 to 12 years.
    School,
    /// 12 to 18 years.
    Adolescent,
    Adult,
}

impl AgeBand {
    pub fn at(birth: NaiveDate, on: NaiveDate) -> AgeBand {
        let days = (on - birth).num_days();
        let years = on.years_since(birth).unwrap_or(0);
        match (days, years) {
            (d, _) if d < 28 => AgeBand::Newborn,
            (_, 0) => AgeBand::Infant,
            (_, 1..=2) => AgeBand::Toddler,
            (_, 3..=5) => AgeBand::Preschool,
            (_, 6..=11) => AgeBand::School,
            (_, 12..=17) => AgeBand::Adolescent,
            _ => AgeBand::Adult,
        }
    }
}

/// The range within which a value is not flagged, for this age band; `None` where no single
/// range applies (weight, height, head circumference depend on growth charts).
///
/// Heart and respiratory rates: Fleming et al., Lancet 2011 (1st to 99th centiles, rounded);
/// adult blood pressure below 140/90 and above 90/60; SpO2 95 % and over; temperature
/// 36.0–37.9 °C; random blood glucose 3.9–11.0 mmol/L (WHO's diabetes threshold); adult BMI
/// 18.5–30 (WHO).
pub fn normal_range(kind: VitalKind, band: AgeBand) -> Option<(f64, f64)> {
    use AgeBand::*;
    use VitalKind::*;
    Some(match (kind, band) {
        (Temperature, _) => (36.0, 37.9),
        (Spo2, _) => (95.0, 100.0),
        (BloodGlucose, _) => (3.9, 11.0),
        (HeartRate, Newborn) => (100.0, 180.0),
        (HeartRate, Infant) => (90.0, 175.0),
        (HeartRate, Toddler) => (80.0, 150.0),
        (HeartRate, Preschool) => (70.0, 135.0),
        (HeartRate, School) => (60.0, 120.0),
        (HeartRate, Adolescent) => (55.0, 110.0),
        (HeartRate, Adult) => (50.0, 100.0),
        (RespiratoryRate, Newborn) => (30.0, 60.0),
        (RespiratoryRate, Infant) => (25.0, 55.0),
        (RespiratoryRate, Toddler) => (20.0, 40.0),
        (RespiratoryRate, Preschool) => (18.0, 32.0),
        (RespiratoryRate, School) => (15.0, 26.0),
        (RespiratoryRate, Adolescent) => (12.0, 22.0),
        (RespiratoryRate, Adult) => (12.0, 20.0),
        (Systolic, Newborn | Infant) => (60.0, 105.0),
        (Systolic, Toddler | Preschool) => (80.0, 112.0),
        (Systolic, School) => (90.0, 120.0),
        (Systolic, Adolescent) => (90.0, 130.0),
        (Systolic, Adult) => (90.0, 139.0),
        (Diastolic, Newborn | Infant) => (35.0, 65.0),
        (Diastolic, Toddler | Preschool) => (45.0, 72.0),
        (Diastolic, School) => (55.0, 80.0),
        (Diastolic, Adolescent) => (55.0, 85.0),
        (Diastolic, Adult) => (60.0, 89.0),
        (Bmi, Adult) => (18.5, 29.9),
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type, Default)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    #[default]
    Normal,
    Low,
    High,
}

crate::text_column!(Flag);

pub fn flag(kind: VitalKind, value: f64, band: AgeBand) -> Flag {
    match normal_range(kind, band) {
        Some((lo, _)) if value < lo => Flag::Low,
        Some((_, hi)) if value > hi => Flag::High,
        _ => Flag::Normal,
    }
}

/// What a nurse or doctor enters: any of the values, at least one. BMI is not entered.
#[derive(Debug, Clone, Default, Serialize, Deserialize, Type)]
pub struct VitalsInput {
    pub patient_id: String,
    /// The visit, if taken during one (a nurse at triage may record before it).
    pub encounter_id: Option<String>,
    pub temperature: Option<f64>,
    pub systolic: Option<f64>,
    pub diastolic: Option<f64>,
    pub heart_rate: Option<f64>,
    pub respiratory_rate: Option<f64>,
    pub spo2: Option<f64>,
    pub weight: Option<f64>,
    pub height: Option<f64>,
    pub head_circumference: Option<f64>,
    pub blood_glucose: Option<f64>,
}

impl VitalsInput {
    fn values(&self) -> Vec<(VitalKind, f64)> {
        use VitalKind::*;
        [
            (Temperature, self.temperature),
            (Systolic, self.systolic),
            (Diastolic, self.diastolic),
            (HeartRate, self.heart_rate),
            (RespiratoryRate, self.respiratory_rate),
            (Spo2, self.spo2),
            (Weight, self.weight),
            (Height, self.height),
            (HeadCircumference, self.head_circumference),
            (BloodGlucose, self.blood_glucose),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct Vital {
    pub id: String,
    pub set_id: String,
    pub patient_id: String,
    pub encounter_id: Option<String>,
    pub kind: VitalKind,
    pub loinc: String,
    pub unit: String,
    pub value: f64,
    pub flag: Flag,
    pub taken_at: String,
    pub taken_by: String,
}

fn round(v: f64, decimals: i32) -> f64 {
    let p = 10f64.powi(decimals);
    (v * p).round() / p
}

/// Checks every value (all problems at once would be nicer to the eye, but the first names
/// its field) and returns them rounded, BMI added when weight and height are both there.
pub fn check(
    input: &VitalsInput,
    band: AgeBand,
    last_height: Option<f64>,
) -> Result<Vec<(VitalKind, f64, Flag)>> {
    let values = input.values();
    if values.is_empty() {
        return Err(Error::invalid(Field::Vitals, Reason::Required));
    }
    let mut out = vec![];
    for (kind, v) in values {
        let (lo, hi) = kind.possible();
        if !v.is_finite() || v < lo || v > hi {
            return Err(Error::invalid(kind.field(), Reason::OutOfRange));
        }
        if kind == VitalKind::HeadCircumference
            && !matches!(
                band,
                AgeBand::Newborn | AgeBand::Infant | AgeBand::Toddler | AgeBand::Preschool
            )
        {
            // Measured in children up to about three; refused past six, where it is a mistake.
            return Err(Error::invalid(kind.field(), Reason::NotAllowed));
        }
        let v = round(v, kind.decimals());
        out.push((kind, v, flag(kind, v, band)));
    }
    if let (Some(s), Some(d)) = (input.systolic, input.diastolic) {
        if d >= s {
            return Err(Error::invalid(Field::Diastolic, Reason::Mismatch));
        }
    }
    // BMI from this weight and this height, or the last height measured (adults' heights
    // don't change between visits).
    let height = input
        .height
        .or(last_height.filter(|_| band == AgeBand::Adult));
    if let (Some(w), Some(h)) = (input.weight, height) {
        let bmi = round(w / (h / 100.0).powi(2), 1);
        let (lo, hi) = VitalKind::Bmi.possible();
        if (lo..=hi).contains(&bmi) {
            out.push((VitalKind::Bmi, bmi, flag(VitalKind::Bmi, bmi, band)));
        }
    }
    Ok(out)
}

const COLUMNS: &str =
    "v.id, v.set_id, v.patient_id, v.encounter_id, v.kind, v.value, v.flag, v.taken_at, coalesce(s.full_name, v.created_by)";
const FROM: &str = "vitals v LEFT JOIN staff s ON s.id = v.created_by";

fn row(r: &Row<'_>) -> rusqlite::Result<Vital> {
    let kind: VitalKind = r.get(4)?;
    Ok(Vital {
        id: r.get(0)?,
        set_id: r.get(1)?,
        patient_id: r.get(2)?,
        encounter_id: r.get(3)?,
        kind,
        loinc: kind.loinc().into(),
        unit: kind.ucum().into(),
        value: r.get(5)?,
        flag: r.get(6)?,
        taken_at: r.get(7)?,
        taken_by: r.get(8)?,
    })
}

/// Records one set of vitals taken now. `birth` is the patient's birth date, `today` the
/// clinic's local date (for the age band).
pub fn record(
    w: &mut Write<'_>,
    input: &VitalsInput,
    birth: NaiveDate,
    today: NaiveDate,
) -> Result<Vec<Vital>> {
    let last_height = last_value(w.conn(), &input.patient_id, VitalKind::Height)?;
    let values = check(input, AgeBand::at(birth, today), last_height)?;
    let set_id = new_id();
    let mut ids = vec![];
    for (kind, value, flag) in values {
        let id = new_id();
        w.insert_row(
            Table::Vitals,
            &id,
            &[
                ("set_id", &set_id),
                ("patient_id", &input.patient_id),
                ("encounter_id", &input.encounter_id),
                ("kind", &kind),
                ("value", &value),
                ("flag", &flag),
                ("taken_at", &w.now_ts()),
            ],
        )?;
        ids.push(id);
    }
    let mut st = w.conn().prepare_cached(&format!(
        "SELECT {COLUMNS} FROM {FROM} WHERE v.set_id = ?1 ORDER BY v.rowid"
    ))?;
    let rows = st.query_map([&set_id], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn last_value(conn: &Connection, patient_id: &str, kind: VitalKind) -> Result<Option<f64>> {
    use rusqlite::OptionalExtension;
    Ok(conn
        .prepare_cached(
            "SELECT value FROM vitals WHERE patient_id = ?1 AND kind = ?2 ORDER BY taken_at DESC LIMIT 1",
        )?
        .query_row(rusqlite::params![patient_id, kind], |r| r.get(0))
        .optional()?)
}

/// Every measurement of the patient, oldest first (for the trend charts), or of one kind.
pub fn history(conn: &Connection, patient_id: &str, kind: Option<VitalKind>) -> Result<Vec<Vital>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM {FROM} WHERE v.patient_id = ?1 AND (?2 IS NULL OR v.kind = ?2)
         ORDER BY v.taken_at, v.rowid"
    ))?;
    let rows = st.query_map(rusqlite::params![patient_id, kind], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The newest value of each kind.
pub fn latest(conn: &Connection, patient_id: &str) -> Result<Vec<Vital>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM {FROM}
         WHERE v.id IN (SELECT (SELECT id FROM vitals x WHERE x.patient_id = ?1 AND x.kind = k.kind
                                ORDER BY x.taken_at DESC, x.rowid DESC LIMIT 1)
                        FROM (SELECT DISTINCT kind FROM vitals WHERE patient_id = ?1) k)
         ORDER BY v.kind"
    ))?;
    let rows = st.query_map([patient_id], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Time of `at` as a date in the clinic's zone.
pub fn local_day(at: DateTime<Utc>, tz: chrono_tz::Tz) -> NaiveDate {
    at.with_timezone(&tz).date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn age_bands_follow_the_birthday() {
        let today = d("2026-03-10");
        assert_eq!(AgeBand::at(d("2026-03-01"), today), AgeBand::Newborn);
        assert_eq!(AgeBand::at(d("2025-03-11"), today), AgeBand::Infant);
        assert_eq!(AgeBand::at(d("2025-03-10"), today), AgeBand::Toddler);
        assert_eq!(AgeBand::at(d("2020-03-10"), today), AgeBand::School);
        assert_eq!(AgeBand::at(d("2008-03-11"), today), AgeBand::Adolescent);
        assert_eq!(AgeBand::at(d("2008-03-10"), today), AgeBand::Adult);
    }

    #[test]
    fn impossible_values_name_their_field_and_abnormal_ones_are_flagged_by_age() {
        let adult = VitalsInput {
            temperature: Some(36.64),
            heart_rate: Some(130.0),
            systolic: Some(150.0),
            diastolic: Some(95.0),
            weight: Some(80.0),
            height: Some(180.0),
            ..Default::default()
        };
        let got = check(&adult, AgeBand::Adult, None).unwrap();
        let of = |k| got.iter().find(|(kind, _, _)| *kind == k).copied().unwrap();
        assert_eq!(
            of(VitalKind::Temperature),
            (VitalKind::Temperature, 36.6, Flag::Normal)
        );
        assert_eq!(of(VitalKind::HeartRate).2, Flag::High);
        assert_eq!(of(VitalKind::Systolic).2, Flag::High);
        assert_eq!(of(VitalKind::Bmi).1, 24.7);
        // 130 a minute is normal for a baby.
        let baby = VitalsInput {
            heart_rate: Some(130.0),
            ..Default::default()
        };
        assert_eq!(
            check(&baby, AgeBand::Infant, None).unwrap()[0].2,
            Flag::Normal
        );

        let refused = |input: VitalsInput, band| match check(&input, band, None).unwrap_err() {
            Error::Invalid { field, reason, .. } => (field.0, reason),
            e => panic!("{e:?}"),
        };
        assert_eq!(
            refused(
                VitalsInput {
                    temperature: Some(366.0),
                    ..Default::default()
                },
                AgeBand::Adult
            ),
            ("temperature", Reason::OutOfRange)
        );
        assert_eq!(
            refused(
                VitalsInput {
                    spo2: Some(101.0),
                    ..Default::default()
                },
                AgeBand::Adult
            ),
            ("spo2", Reason::OutOfRange)
        );
        assert_eq!(
            refused(
                VitalsInput {
                    heart_rate: Some(f64::NAN),
                    ..Default::default()
                },
                AgeBand::Adult
            ),
            ("heart_rate", Reason::OutOfRange)
        );
        assert_eq!(
            refused(
                VitalsInput {
                    systolic: Some(80.0),
                    diastolic: Some(90.0),
                    ..Default::default()
                },
                AgeBand::Adult
            ),
            ("diastolic", Reason::Mismatch)
        );
        assert_eq!(
            refused(
                VitalsInput {
                    head_circumference: Some(40.0),
                    ..Default::default()
                },
                AgeBand::Adult
            ),
            ("head_circumference", Reason::NotAllowed)
        );
        assert_eq!(
            refused(VitalsInput::default(), AgeBand::Adult),
            ("vitals", Reason::Required)
        );
        // An adult's BMI from today's weight and the last height measured.
        let w = VitalsInput {
            weight: Some(90.0),
            ..Default::default()
        };
        let got = check(&w, AgeBand::Adult, Some(175.0)).unwrap();
        assert!(got.contains(&(VitalKind::Bmi, 29.4, Flag::Normal)));
    }
}
