//! The dispensing label, on the receipt-roll layout: the patient, the drug, how to take it,
//! the lot, the expiry and the date, in the patient's language (the clinic's when not given).
//! One label per dispensing, one after another on the roll.

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use super::dispense;
use crate::clinical::prescriptions;
use crate::error::{Reason, Result};
use crate::print::{clinic_header, page_label, printed_at, render, Block, Document, Paper};
use crate::settings::{self, Language};

struct Texts {
    title: &'static str,
    patient: &'static str,
    record: &'static str,
    directions: &'static str,
    days: &'static str,
    quantity: &'static str,
    lot: &'static str,
    expiry: &'static str,
    dispensed: &'static str,
    doctor: &'static str,
}

fn texts(lang: Language) -> Texts {
    match lang {
        Language::En => Texts {
            title: "Dispensing label",
            patient: "Patient",
            record: "Record no.",
            directions: "How to take",
            days: "days",
            quantity: "Quantity",
            lot: "Lot",
            expiry: "Expiry",
            dispensed: "Dispensed",
            doctor: "Prescribed by",
        },
        Language::Ru => Texts {
            title: "Этикетка",
            patient: "Пациент",
            record: "№ карты",
            directions: "Как принимать",
            days: "дн.",
            quantity: "Количество",
            lot: "Серия",
            expiry: "Годен до",
            dispensed: "Выдано",
            doctor: "Назначил",
        },
        Language::Th => Texts {
            title: "ฉลากยา",
            patient: "ผู้ป่วย",
            record: "เลขที่เวชระเบียน",
            directions: "วิธีใช้",
            days: "วัน",
            quantity: "จำนวน",
            lot: "เลขที่ผลิต",
            expiry: "วันหมดอายุ",
            dispensed: "วันที่จ่ายยา",
            doctor: "แพทย์ผู้สั่ง",
        },
    }
}

/// The labels of dispensings `ids` (of one prescription or several) in `lang`.
pub fn pdf(
    conn: &Connection,
    ids: &[String],
    lang: Option<Language>,
    now: DateTime<Utc>,
) -> Result<Vec<u8>> {
    if ids.is_empty() || ids.len() > 200 {
        return Err(crate::Error::invalid(super::Field::Lines, Reason::Required));
    }
    let clinic = settings::clinic(conn)?;
    let lang = lang.unwrap_or(clinic.default_language);
    let t = texts(lang);
    let mut blocks = vec![clinic_header(conn)?];
    for (n, id) in ids.iter().enumerate() {
        let d = dispense::dispensing(conn, id)?;
        let rx = prescriptions::get(conn, &d.prescription_id)?;
        let patient = crate::patients::get(conn, &rx.patient_id)?;
        let item = rx
            .items
            .iter()
            .find(|i| i.id == d.prescription_item_id)
            .ok_or_else(|| crate::Error::internal("a dispensing's item is gone"))?;
        let directions = item.directions();
        let at = crate::ids::parse_ts(&d.at).unwrap_or(now);
        if n > 0 {
            blocks.push(Block::Rule { label: None });
        }
        blocks.push(Block::Title(
            format!("{} {}", d.item_name, d.strength).trim().to_string(),
        ));
        blocks.push(Block::Paragraph(format!(
            "{}: {directions} ({} {})",
            t.directions, item.duration_days, t.days
        )));
        blocks.push(Block::KeyValues(vec![
            (t.patient.into(), rx.patient_name.clone()),
            (t.record.into(), patient.mrn.clone()),
            (t.quantity.into(), format!("{} {}", d.quantity, item.unit)),
            (t.lot.into(), d.lot.clone()),
            (t.expiry.into(), d.expiry.clone()),
            (t.dispensed.into(), printed_at(at, clinic.tz())),
            (t.doctor.into(), rx.doctor_name.clone()),
        ]));
    }
    render(&Document {
        title: t.title.to_string(),
        paper: Paper::Roll80,
        blocks,
        footer: clinic.name.clone(),
        page_label: page_label(lang).to_string(),
    })
}
