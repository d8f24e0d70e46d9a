//! The recovery-key sheet, the first paper of the document engine: printed in the clinic's
//! language (English, Russian or Thai).

use chrono::{DateTime, Utc};

use super::{page_label, printed_at, render, Block, Document, Paper, Style};
use crate::error::Result;
use crate::settings::{ClinicProfile, Language};
use crate::store::Device;

struct Texts {
    title: &'static str,
    clinic: &'static str,
    device: &'static str,
    created: &'static str,
    key_label: &'static str,
    lines: [&'static str; 5],
    stored_by: &'static str,
    date: &'static str,
}

fn texts(lang: Language) -> Texts {
    match lang {
        Language::Ru => Texts {
            title: "Ключ восстановления ClinicDesk",
            clinic: "Клиника",
            device: "Компьютер",
            created: "Создан",
            key_label: "Ключ восстановления",
            lines: [
                "Этот ключ открывает базу данных клиники, если все пароли администраторов утеряны.",
                "Храните лист в сейфе, отдельно от компьютера. Не фотографируйте и не пересылайте его.",
                "Чтобы восстановить доступ: на экране входа выберите «Восстановить доступ»,",
                "введите ключ, имя администратора и новый пароль.",
                "Если ключ мог попасть в чужие руки, создайте новый: Настройки → Ключи.",
            ],
            stored_by: "Хранит (ФИО, подпись)",
            date: "Дата",
        },
        Language::Th => Texts {
            title: "กุญแจกู้คืน ClinicDesk",
            clinic: "คลินิก",
            device: "คอมพิวเตอร์",
            created: "สร้างเมื่อ",
            key_label: "กุญแจกู้คืน",
            lines: [
                "กุญแจนี้เปิดฐานข้อมูลของคลินิกได้ เมื่อรหัสผ่านของผู้ดูแลระบบหายทั้งหมด",
                "เก็บแผ่นนี้ไว้ในตู้เซฟ แยกจากคอมพิวเตอร์ ห้ามถ่ายรูปหรือส่งต่อ",
                "วิธีกู้คืนการเข้าใช้: ที่หน้าจอเข้าสู่ระบบ เลือก “กู้คืนการเข้าใช้”",
                "แล้วกรอกกุญแจนี้ ชื่อผู้ใช้ของผู้ดูแลระบบ และรหัสผ่านใหม่",
                "หากกุญแจอาจถูกผู้อื่นเห็น ให้สร้างกุญแจใหม่ที่ การตั้งค่า → กุญแจ",
            ],
            stored_by: "ผู้เก็บรักษา (ชื่อ ลายมือชื่อ)",
            date: "วันที่",
        },
        Language::En => Texts {
            title: "ClinicDesk recovery key",
            clinic: "Clinic",
            device: "Computer",
            created: "Created",
            key_label: "Recovery key",
            lines: [
                "This key opens the clinic's database if every administrator password is lost.",
                "Keep this sheet in a safe, away from the computer. Do not photograph or send it.",
                "To recover access: on the sign-in screen choose \"Recover access\",",
                "then enter this key, the administrator's username and a new password.",
                "If the key may have been seen by others, make a new one in Settings → Keys.",
            ],
            stored_by: "Kept by (name, signature)",
            date: "Date",
        },
    }
}

pub fn recovery_sheet(
    clinic: &ClinicProfile,
    header: Block,
    grouped_key: &str,
    device: &Device,
    now: DateTime<Utc>,
) -> Result<Vec<u8>> {
    let lang = clinic.default_language;
    let t = texts(lang);
    // The key in two lines of four groups, large and monospaced for copying by hand.
    let groups: Vec<&str> = grouped_key.split('-').collect();
    let half = groups.len().div_ceil(2).max(1);
    let key = groups
        .chunks(half)
        .map(|g| g.join("-"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut blocks = vec![
        header,
        Block::Title(t.title.to_string()),
        Block::KeyValues(vec![
            (t.clinic.to_string(), clinic.name.clone()),
            (t.device.to_string(), device.code.clone()),
            (t.created.to_string(), printed_at(now, clinic.tz())),
        ]),
        Block::Title(t.key_label.to_string()),
        Block::Styled {
            text: key,
            // Large, but one line of four groups even on a receipt roll.
            style: Style::new(if clinic.paper == Paper::Roll80 {
                13.0
            } else {
                20.0
            })
            .mono(),
        },
        Block::Space(8.0),
    ];
    blocks.extend(t.lines.iter().map(|l| Block::Paragraph(l.to_string())));
    blocks.push(Block::Rule {
        label: Some(t.stored_by.to_string()),
    });
    blocks.push(Block::Rule {
        label: Some(t.date.to_string()),
    });
    render(&Document {
        title: t.title.to_string(),
        paper: clinic.paper,
        blocks,
        footer: t.title.to_string(),
        page_label: page_label(lang).to_string(),
    })
}
