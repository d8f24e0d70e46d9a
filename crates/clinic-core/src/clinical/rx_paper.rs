//! The printed prescription: the clinic's header, the patient, the doctor with licence
//! number, the items, the date and a signature line, in the language asked for (the
//! patient's) or the clinic's.

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use super::prescriptions::{self, RxStatus};
use crate::error::Result;
use crate::print::{clinic_header, page_label, printed_at, render, Align, Block, Column, Document};
use crate::settings::{self, Language};

struct Texts {
    title: &'static str,
    draft: &'static str,
    patient: &'static str,
    born: &'static str,
    record: &'static str,
    doctor: &'static str,
    licence: &'static str,
    date: &'static str,
    drug: &'static str,
    how: &'static str,
    days: &'static str,
    quantity: &'static str,
    signature: &'static str,
}

fn texts(lang: Language) -> Texts {
    match lang {
        Language::En => Texts {
            title: "Prescription",
            draft: "DRAFT, NOT SIGNED: not valid for dispensing",
            patient: "Patient",
            born: "Date of birth",
            record: "Record no.",
            doctor: "Doctor",
            licence: "Licence no.",
            date: "Date",
            drug: "Medicine",
            how: "Dose and directions",
            days: "Days",
            quantity: "Quantity",
            signature: "Doctor's signature",
        },
        Language::Ru => Texts {
            title: "Рецепт",
            draft: "ЧЕРНОВИК, НЕ ПОДПИСАН: не действителен для отпуска",
            patient: "Пациент",
            born: "Дата рождения",
            record: "№ карты",
            doctor: "Врач",
            licence: "№ лицензии",
            date: "Дата",
            drug: "Препарат",
            how: "Доза и способ приёма",
            days: "Дней",
            quantity: "Количество",
            signature: "Подпись врача",
        },
        Language::Th => Texts {
            title: "ใบสั่งยา",
            draft: "ฉบับร่าง ยังไม่ได้ลงนาม ใช้จ่ายยาไม่ได้",
            patient: "ผู้ป่วย",
            born: "วันเกิด",
            record: "เลขที่เวชระเบียน",
            doctor: "แพทย์",
            licence: "เลขที่ใบอนุญาต",
            date: "วันที่",
            drug: "ยา",
            how: "ขนาดและวิธีใช้",
            days: "วัน",
            quantity: "จำนวน",
            signature: "ลายมือชื่อแพทย์",
        },
    }
}

/// The PDF of prescription `id` in `lang` (the clinic's language when `None`).
pub fn pdf(
    conn: &Connection,
    id: &str,
    lang: Option<Language>,
    now: DateTime<Utc>,
) -> Result<Vec<u8>> {
    let clinic = settings::clinic(conn)?;
    let lang = lang.unwrap_or(clinic.default_language);
    let t = texts(lang);
    let rx = prescriptions::get(conn, id)?;
    let patient = crate::patients::get(conn, &rx.patient_id)?;
    let when = rx
        .signed_at
        .as_deref()
        .and_then(crate::ids::parse_ts)
        .unwrap_or(now);
    let mut blocks = vec![clinic_header(conn)?, Block::Title(t.title.to_string())];
    if rx.status != RxStatus::Signed {
        blocks.push(Block::Paragraph(t.draft.to_string()));
    }
    blocks.push(Block::KeyValues(vec![
        (t.patient.to_string(), rx.patient_name.clone()),
        (t.born.to_string(), patient.birth_date.clone()),
        (t.record.to_string(), patient.mrn.clone()),
        (t.doctor.to_string(), rx.doctor_name.clone()),
        (t.licence.to_string(), rx.doctor_licence.clone()),
        (t.date.to_string(), printed_at(when, clinic.tz())),
    ]));
    blocks.push(Block::Table {
        columns: vec![
            Column::new(t.drug, 3.0, Align::Left),
            Column::new(t.how, 4.0, Align::Left),
            Column::new(t.days, 1.0, Align::Right),
            Column::new(t.quantity, 1.6, Align::Right),
        ],
        rows: rx
            .items
            .iter()
            .map(|it| {
                vec![
                    format!("{} {}", it.name, it.strength).trim().to_string(),
                    it.directions(),
                    it.duration_days.to_string(),
                    format!("{} {}", it.quantity, it.unit),
                ]
            })
            .collect(),
    });
    blocks.push(Block::Space(24.0));
    blocks.push(Block::Rule {
        label: Some(format!("{} ({})", t.signature, rx.doctor_name)),
    });
    render(&Document {
        title: format!("{} {}", t.title, rx.patient_name),
        paper: clinic.paper,
        blocks,
        footer: clinic.name.clone(),
        page_label: page_label(lang).to_string(),
    })
}
