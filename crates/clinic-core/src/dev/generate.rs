//! Realistic generated data for the demo and for benchmarks: multilingual patients
//! (English, Russian, Thai names), doctors with weekly hours, and appointments. Writes go
//! through the audited write path like everything else, in batches.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::error::Result;
use crate::ids::{new_id, ts};
use crate::patients::{self, Allergy, PatientInput, Severity, Sex};
use crate::scheduling::hours as schedule;
use crate::scheduling::{
    doctors, AppointmentKind, AppointmentStatus, Doctor, DoctorStatus, Specialization, Table,
    WorkingBlock,
};
use crate::store::{Actor, Db, Write};
use crate::Core;

/// A small deterministic generator (xorshift64*): the same seed gives the same clinic.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    pub fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const EN_GIVEN_F: &[&str] = &[
    "Anna", "Emily", "Olivia", "Sophie", "Grace", "Chloe", "Lucy", "Hannah", "Mia", "Ella",
    "Amelia", "Isla", "Jessica", "Ruby", "Laura",
];
const EN_GIVEN_M: &[&str] = &[
    "James", "Oliver", "Jack", "Harry", "George", "Noah", "Thomas", "William", "Daniel", "Samuel",
    "Joseph", "David", "Michael", "Peter", "Adam",
];
const EN_FAMILY: &[&str] = &[
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Robinson",
    "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Wood",
    "Jackson", "Clarke",
];
const RU_GIVEN_F: &[&str] = &[
    "Анна",
    "Мария",
    "Елена",
    "Ольга",
    "Наталья",
    "Татьяна",
    "Ирина",
    "Светлана",
    "Юлия",
    "Ксения",
    "Дарья",
    "Алёна",
    "Екатерина",
];
const RU_GIVEN_M: &[&str] = &[
    "Иван",
    "Алексей",
    "Дмитрий",
    "Сергей",
    "Андрей",
    "Михаил",
    "Николай",
    "Павел",
    "Артём",
    "Юрий",
    "Фёдор",
    "Егор",
    "Владимир",
];
const RU_FAMILY_M: &[&str] = &[
    "Иванов",
    "Смирнов",
    "Кузнецов",
    "Попов",
    "Васильев",
    "Петров",
    "Соколов",
    "Михайлов",
    "Новиков",
    "Фёдоров",
    "Морозов",
    "Волков",
    "Алексеев",
    "Лебедев",
    "Семёнов",
    "Ёлкин",
];
const TH_GIVEN_F: &[&str] = &[
    "สมหญิง",
    "มาลี",
    "วิไล",
    "สุดา",
    "นภา",
    "พรทิพย์",
    "กาญจนา",
    "ศิริพร",
    "อรุณี",
    "จันทร์เพ็ญ",
    "ปราณี",
    "รัตนา",
];
const TH_GIVEN_M: &[&str] = &[
    "สมชาย",
    "สมศักดิ์",
    "ประเสริฐ",
    "วิชัย",
    "สุรชัย",
    "ธนากร",
    "อนุชา",
    "กิตติ",
    "ณัฐพล",
    "พงศกร",
    "ชัยวัฒน์",
    "เอกชัย",
];
const TH_FAMILY: &[&str] = &[
    "ใจดี",
    "รักไทย",
    "ศรีสุข",
    "สุขสวัสดิ์",
    "วงศ์สวัสดิ์",
    "แสงทอง",
    "บุญมา",
    "ทองดี",
    "มั่นคง",
    "เจริญสุข",
    "พึ่งบุญ",
    "ชัยมงคล",
    "สมบูรณ์",
    "อินทร์แก้ว",
];
const ALLERGENS: &[&str] = &[
    "Penicillin",
    "Aspirin",
    "Ibuprofen",
    "Sulfonamides",
    "Latex",
    "Peanuts",
    "Shellfish",
    "Codeine",
];
const INSURERS: &[&str] = &[
    "Bangkok Insurance",
    "AIA",
    "Muang Thai Life",
    "Allianz Ayudhya",
    "Social Security",
];

/// One random patient, as the registration form would send it.
pub fn patient(rng: &mut Rng, today: NaiveDate) -> PatientInput {
    let female = rng.chance(52);
    let (given, family, phone) = match rng.below(10) {
        0..=3 => {
            let g = if female {
                rng.pick(TH_GIVEN_F)
            } else {
                rng.pick(TH_GIVEN_M)
            };
            (
                g.to_string(),
                rng.pick(TH_FAMILY).to_string(),
                format!(
                    "+66 8{} {:03} {:04}",
                    rng.below(10),
                    rng.below(1000),
                    rng.below(10_000)
                ),
            )
        }
        4..=6 => {
            let g = if female {
                rng.pick(RU_GIVEN_F)
            } else {
                rng.pick(RU_GIVEN_M)
            };
            let f = rng.pick(RU_FAMILY_M).to_string();
            let f = if female { format!("{f}а") } else { f };
            (
                g.to_string(),
                f,
                format!(
                    "+7 9{:02} {:03}-{:02}-{:02}",
                    rng.below(100),
                    rng.below(1000),
                    rng.below(100),
                    rng.below(100)
                ),
            )
        }
        _ => {
            let g = if female {
                rng.pick(EN_GIVEN_F)
            } else {
                rng.pick(EN_GIVEN_M)
            };
            (
                g.to_string(),
                rng.pick(EN_FAMILY).to_string(),
                format!("+44 7{:03} {:06}", rng.below(1000), rng.below(1_000_000)),
            )
        }
    };
    let birth = today - Duration::days(365 + rng.below(365 * 85) as i64);
    let allergies = if rng.chance(15) {
        vec![Allergy {
            substance: rng.pick(ALLERGENS).to_string(),
            reaction: "rash".into(),
            severity: *rng.pick(&[Severity::Mild, Severity::Moderate, Severity::Severe]),
        }]
    } else {
        vec![]
    };
    let insured = rng.chance(40);
    PatientInput {
        given_name: given,
        family_name: family,
        sex: if female { Sex::Female } else { Sex::Male },
        birth_date: birth.format("%Y-%m-%d").to_string(),
        phones: vec![phone],
        email: String::new(),
        address: String::new(),
        national_id: if rng.chance(70) {
            format!("{}", 1_000_000_000_000 + rng.below(8_999_999_999_999))
        } else {
            String::new()
        },
        blood_group: rng.pick(&["", "A+", "B+", "O+", "AB+", "O-"]).to_string(),
        allergies,
        chronic_conditions: String::new(),
        medical_history: String::new(),
        current_medications: String::new(),
        insurance_provider: if insured {
            rng.pick(INSURERS).to_string()
        } else {
            String::new()
        },
        insurance_policy: if insured {
            format!("POL-{}", rng.below(10_000_000))
        } else {
            String::new()
        },
        insurance_valid_until: String::new(),
        emergency_name: String::new(),
        emergency_relation: String::new(),
        emergency_phone: String::new(),
        notes: String::new(),
    }
}

/// Registers `n` patients in transactions of `batch`, calling `progress(done)` after each.
pub fn patients(
    db: &Db,
    actor: &Actor,
    n: u64,
    seed: u64,
    mut progress: impl FnMut(u64),
) -> Result<Vec<String>> {
    let mut rng = Rng::new(seed);
    let code = db.device().code.clone();
    let today = db.now().date_naive();
    let mut ids = Vec::with_capacity(n as usize);
    let batch = 2000;
    let mut done = 0;
    while done < n {
        let k = batch.min(n - done);
        db.write(actor, |w| {
            for _ in 0..k {
                if let patients::RegisterOutcome::Registered { patient } = patients::register(
                    w,
                    &patient(&mut rng, today),
                    true,
                    &code,
                    today,
                    patients::Sections::ALL,
                )? {
                    ids.push(patient.id);
                }
            }
            Ok(())
        })?;
        done += k;
        progress(done);
    }
    Ok(ids)
}

const SPECIALTIES: &[(&str, &str)] = &[
    ("General practice", "C"),
    ("Paediatrics", "P"),
    ("Cardiology", "K"),
    ("Dermatology", "D"),
    ("Gynaecology", "G"),
];
const DOCTOR_NAMES: &[&str] = &[
    "Dr. Somchai Wongsakul",
    "Dr. Elena Sokolova",
    "Dr. James Carter",
    "Dr. Nattaya Srisuk",
    "Dr. Pavel Orlov",
    "Dr. Emily Watson",
    "Dr. Kittipong Chaiyo",
    "Dr. Irina Belova",
    "Dr. Thomas Green",
    "Dr. Malee Thongdee",
    "Dr. Sergei Volkov",
    "Dr. Laura Hughes",
    "Dr. Anucha Boonma",
    "Dr. Olga Fedorova",
    "Dr. Daniel Price",
    "Dr. Pranee Jaidee",
    "Dr. Nikolai Popov",
    "Dr. Sophie Turner",
    "Dr. Wichai Saetang",
    "Dr. Tatiana Orlova",
];

/// Specializations and `n` approved doctors with weekly hours (Mon–Fri 08:00–12:00 and
/// 13:00–17:00, Saturday mornings for every other doctor, 15-minute slots), saved through
/// the admin's commands. The first doctor signs in as `first_staff`, if given.
pub fn doctors(
    core: &Core,
    n: usize,
    currency: &str,
    first_staff: Option<String>,
) -> Result<Vec<Doctor>> {
    let mut specs: Vec<Specialization> = core.specialization_list()?;
    for (name, code) in SPECIALTIES {
        if !specs.iter().any(|s| s.name == *name) {
            specs.push(core.specialization_save(Specialization {
                id: String::new(),
                name: (*name).into(),
                queue_code: (*code).into(),
            })?);
        }
    }
    let mut out = vec![];
    for i in 0..n {
        let spec = &specs[if i < 2 { 0 } else { i % specs.len() }];
        let d = core.doctor_save(Doctor {
            id: String::new(),
            staff_id: if i == 0 { first_staff.clone() } else { None },
            full_name: DOCTOR_NAMES[i % DOCTOR_NAMES.len()].to_string()
                + &if i >= DOCTOR_NAMES.len() {
                    format!(" {}", i)
                } else {
                    String::new()
                },
            specialization_id: spec.id.clone(),
            licence_number: format!("MD-{:05}", 10_000 + i),
            qualification: "MD".into(),
            years_experience: 5 + (i as u32 * 3) % 25,
            fee_minor: 50_000 + (i as i64 % 4) * 10_000,
            fee_currency: currency.into(),
            biography: String::new(),
            status: DoctorStatus::Approved,
            available: true,
            room: format!("{}", 101 + i),
        })?;
        let mut hours = vec![];
        for day in 1..=5 {
            hours.push(WorkingBlock {
                weekday: day,
                start_minute: 8 * 60,
                end_minute: 12 * 60,
                slot_minutes: 15,
            });
            hours.push(WorkingBlock {
                weekday: day,
                start_minute: 13 * 60,
                end_minute: 17 * 60,
                slot_minutes: 15,
            });
        }
        if i % 2 == 0 {
            hours.push(WorkingBlock {
                weekday: 6,
                start_minute: 9 * 60,
                end_minute: 12 * 60,
                slot_minutes: 15,
            });
        }
        core.doctor_hours_set(d.id.clone(), hours)?;
        out.push(d);
    }
    Ok(out)
}

/// Fills the doctors' slots from `from` for `days` days, about `fill` percent of them,
/// with random patients. Past appointments are completed (a few no-shows and
/// cancellations), future ones scheduled or confirmed. Returns how many were made.
#[allow(clippy::too_many_arguments)]
pub fn appointments(
    db: &Db,
    actor: &Actor,
    doctors: &[Doctor],
    patient_ids: &[String],
    from: DateTime<Utc>,
    days: u32,
    fill: u64,
    max: u64,
    tz: Tz,
    seed: u64,
    mut progress: impl FnMut(u64),
) -> Result<u64> {
    let mut rng = Rng::new(seed ^ 0x9E37_79B9_7F4A_7C15);
    let now = db.now();
    let mut made = 0u64;
    for day in 0..days {
        if made >= max {
            break;
        }
        let date = schedule::local_date(tz, from) + Duration::days(day as i64);
        db.write(actor, |w| {
            for d in doctors {
                let blocks = doctors::working_hours(w.conn(), &d.id)?;
                for ((start, end), slot) in schedule::day_blocks(&blocks, date, tz) {
                    let mut s = start;
                    let step = Duration::minutes(slot as i64);
                    while s + step <= end && made < max {
                        if rng.chance(fill) {
                            let status = if s + step < now {
                                *rng.pick(&[
                                    AppointmentStatus::Completed,
                                    AppointmentStatus::Completed,
                                    AppointmentStatus::Completed,
                                    AppointmentStatus::NoShow,
                                    AppointmentStatus::Cancelled,
                                ])
                            } else if rng.chance(50) {
                                AppointmentStatus::Confirmed
                            } else {
                                AppointmentStatus::Scheduled
                            };
                            let p: &String = rng.pick(patient_ids);
                            insert_appointment(w, p, &d.id, s, s + step, status)?;
                            made += 1;
                        }
                        s += step;
                    }
                }
            }
            Ok(())
        })?;
        progress(made);
    }
    Ok(made)
}

fn insert_appointment(
    w: &mut Write<'_>,
    patient: &str,
    doctor: &str,
    s: DateTime<Utc>,
    e: DateTime<Utc>,
    status: AppointmentStatus,
) -> Result<()> {
    let id = new_id();
    w.insert(
        Table::Appointments,
        &id,
        "INSERT INTO appointments (id, patient_id, doctor_id, starts_at, ends_at, kind, reason, status,
                                   created_at, created_by, updated_at, updated_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, '', ?7, ?8, ?9, ?8, ?9)",
        rusqlite::params![id, patient, doctor, ts(s), ts(e), AppointmentKind::Consultation, status, w.now_ts(), w.actor_id()],
    )?;
    Ok(())
}

/// How big a generated pharmacy is.
#[derive(Debug, Clone, Copy)]
pub struct PharmacySize {
    /// Stock items in all (the formulary's drugs count among them).
    pub items: usize,
    pub batches_per_item: usize,
    /// Ledger rows in all (each batch's delivery is one).
    pub moves: usize,
}

/// A pharmacy of `size`: items (three in five medications, each a formulary drug), batches
/// received over the last three years (some expired by now, some expiring), and stock moves
/// (mostly dispensing, some adjustments) through `ledger::post`, in batches of audited
/// writes. Every tenth item gets a reorder level. Gives the batch ids.
pub fn pharmacy(
    db: &Db,
    actor: &Actor,
    size: PharmacySize,
    seed: u64,
    mut progress: impl FnMut(&str),
) -> Result<Vec<String>> {
    use crate::pharmacy::{self as ph, ledger, Category, ReceiveInput, StockItemInput};
    let mut rng = Rng::new(seed);
    let today = db.now().date_naive();
    const FORMS: &[(&str, &str)] = &[
        ("tablet", "tablet"),
        ("capsule", "capsule"),
        ("syrup", "bottle"),
        ("injection", "vial"),
        ("cream", "tube"),
    ];
    const STRENGTHS: &[&str] = &[
        "5 mg", "10 mg", "20 mg", "50 mg", "100 mg", "250 mg", "500 mg",
    ];
    let existing: Vec<String> =
        db.read(|c| Ok(ph::items(c, "", None)?.into_iter().map(|i| i.id).collect()))?;
    let mut items = existing;
    while items.len() < size.items {
        let k = (size.items - items.len()).min(500);
        db.write(actor, |w| {
            for _ in 0..k {
                let n = items.len();
                let (form, unit) = *rng.pick(FORMS);
                let medication = rng.chance(60);
                let it = ph::save_item(
                    w,
                    &StockItemInput {
                        category: if medication {
                            Category::Medication
                        } else if rng.chance(70) {
                            Category::Consumable
                        } else {
                            Category::Equipment
                        },
                        name: format!("Item {n:05}"),
                        form: form.into(),
                        strength: rng.pick(STRENGTHS).to_string(),
                        unit: unit.into(),
                        route: "oral".into(),
                        barcode: format!("885{:010}", n),
                        // Every tenth item is reordered at a level about half of them are under.
                        reorder_level: if n.is_multiple_of(10) { 34_000 } else { 0 },
                        ingredients: vec![format!("ingredient_{}", n % 700)],
                        classes: vec![format!("class_{}", n % 90)],
                        active: true,
                        ..Default::default()
                    },
                )?;
                items.push(it.id);
            }
            Ok(())
        })?;
        progress(&format!("items: {} / {}", items.len(), size.items));
    }
    let mut batches = Vec::with_capacity(items.len() * size.batches_per_item);
    for chunk in items.chunks(200) {
        db.write(actor, |w| {
            for item in chunk {
                for b in 0..size.batches_per_item {
                    // Received between three years and a month ago, with a shelf life of
                    // one to three years.
                    let received = today - Duration::days(30 + rng.below(1065) as i64);
                    let expiry = received + Duration::days(365 + rng.below(730) as i64);
                    let batch = ph::receive(
                        w,
                        &ReceiveInput {
                            item_id: item.clone(),
                            lot: format!("L{b:02}-{}", rng.below(1_000_000)),
                            expiry: expiry.to_string(),
                            quantity: 2000 + rng.below(3000) as i64,
                            cost: 100 + rng.below(5000) as i64,
                            ..Default::default()
                        },
                        received,
                    )?;
                    batches.push(batch.id);
                }
            }
            Ok(())
        })?;
        if batches.len() % 10_000 == 0 {
            progress(&format!(
                "batches: {} / {}",
                batches.len(),
                items.len() * size.batches_per_item
            ));
        }
    }
    let mut moves = batches.len();
    while moves < size.moves {
        let k = (size.moves - moves).min(5000);
        db.write(actor, |w| {
            for _ in 0..k {
                let b: &String = rng.pick(&batches);
                if rng.chance(97) {
                    let q = 1 + rng.below(10) as i64;
                    ledger::post(w, b, ledger::MoveKind::Dispensed, -q, "", None)?;
                } else {
                    ledger::post(w, b, ledger::MoveKind::Adjusted, -1, "breakage", None)?;
                }
            }
            Ok(())
        })?;
        moves += k;
        if moves % 100_000 == 0 || moves == size.moves {
            progress(&format!("ledger rows: {moves} / {}", size.moves));
        }
    }
    Ok(batches)
}

/// How much billing `billing_year` makes.
#[derive(Debug, Clone, Copy)]
pub struct BillingSize {
    pub days: i64,
    pub per_day: usize,
    /// The last days left open (not closed).
    pub open_days: i64,
}

/// A year of a busy clinic's billing (`size`): `per_day` invoices a day for `days` days up to today
/// (three lines each: a consultation, a service, a dispensed item), issued that day; most paid
/// that day (cash, card or mobile), some in part, some not at all; every day but the last
/// `open_days` closed. Through the billing domain's functions, a day per transaction. Gives
/// the ids of the invoices.
pub fn billing_year(
    db: &Db,
    actor: &Actor,
    patient_ids: &[String],
    size: BillingSize,
    seed: u64,
    mut progress: impl FnMut(&str),
) -> Result<Vec<String>> {
    let BillingSize {
        days,
        per_day,
        open_days,
    } = size;
    use crate::billing::close::{self, DayCloseInput};
    use crate::billing::invoices::{self, LineInput};
    use crate::billing::payments::{self, Method, PaymentInput, Till};
    use crate::billing::LineKind;
    let mut rng = Rng::new(seed);
    let today = db.now().date_naive();
    let device = db.device().clone();
    let mut ids = Vec::with_capacity(days as usize * per_day);
    for back in (0..days).rev() {
        let day = today - Duration::days(back);
        db.write(actor, |w| {
            let till = Till {
                device_id: &device.id,
                device_code: &device.code,
                today: day,
            };
            for _ in 0..per_day {
                let p: &String = rng.pick(patient_ids);
                let inv = invoices::create(w, p, None)?;
                for (kind, what, price) in [
                    (
                        LineKind::Consultation,
                        "Consultation",
                        50_000 + 10_000 * rng.below(4) as i64,
                    ),
                    (
                        LineKind::Service,
                        "Dressing",
                        5_000 + 100 * rng.below(100) as i64,
                    ),
                    (LineKind::Pharmacy, "Amoxicillin 500 mg", 500),
                ] {
                    invoices::add_line(
                        w,
                        &LineInput {
                            invoice_id: inv.id.clone(),
                            kind,
                            description: what.into(),
                            quantity: if kind == LineKind::Pharmacy { 21 } else { 1 },
                            unit_price: price,
                            ..Default::default()
                        },
                        day,
                    )?;
                }
                let inv = invoices::issue(w, &inv.id, &device.code, day)?;
                let roll = rng.below(100);
                let amount = if roll < 85 {
                    inv.total
                } else if roll < 95 {
                    inv.total / 2
                } else {
                    0
                };
                if amount > 0 {
                    payments::take(
                        w,
                        &PaymentInput {
                            invoice_id: inv.id.clone(),
                            method: *rng.pick(&[Method::Cash, Method::Card, Method::Mobile]),
                            amount,
                            tendered: None,
                            reason: String::new(),
                        },
                        &till,
                    )?;
                }
                ids.push(inv.id);
            }
            if back >= open_days {
                let expected = close::preview(w.conn(), &device.id, day, &[])?.expected_cash;
                close::close(
                    w,
                    &device.id,
                    day,
                    &DayCloseInput {
                        counted: vec![close::Denomination {
                            value: 100,
                            count: expected.max(0) / 100,
                        }],
                        note: "generated: coins not counted".into(),
                    },
                )?;
            }
            Ok(())
        })?;
        if back % 30 == 0 {
            progress(&format!("billing: {} invoices", ids.len()));
        }
    }
    Ok(ids)
}
