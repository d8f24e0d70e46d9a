//! Roles and permissions. Anything not granted here is denied: a role gets exactly the
//! permissions `Role::grants` lists, and a command needs the one permission the command
//! table (crates/clinic-commands) names for it.

use serde::{Deserialize, Serialize};
use specta::Type;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Type,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Doctor,
    Nurse,
    Receptionist,
    Pharmacist,
    Cashier,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Admin,
        Role::Doctor,
        Role::Nurse,
        Role::Receptionist,
        Role::Pharmacist,
        Role::Cashier,
    ];

    pub fn as_str(self) -> &'static str {
        crate::names::name_of(&self)
    }

    /// The permissions this role holds. The only place a permission is granted.
    pub fn grants(self) -> &'static [Permission] {
        use Permission::*;
        match self {
            Role::Admin => &[
                StaffRead,
                StaffManage,
                AuditRead,
                SettingsManage,
                KeysManage,
                PatientRead,
                PatientWrite,
                PatientAllergyRead,
                DoctorManage,
                ScheduleRead,
                AppointmentRead,
                AppointmentWrite,
                QueueRead,
                QueueManage,
                StockRead,
                PriceManage,
                BillingRead,
                BillingWrite,
                InvoiceVoid,
                DiscountOverLimit,
                SyncStatus,
                SyncManage,
            ],
            Role::Doctor => &[
                StaffRead,
                PatientRead,
                PatientWrite,
                PatientAllergyRead,
                PatientMedicationRead,
                PatientClinicalRead,
                ScheduleRead,
                AppointmentRead,
                AppointmentWrite,
                QueueRead,
                QueueCall,
                ClinicalWrite,
                VitalsWrite,
                PrescriptionRead,
                SyncStatus,
            ],
            Role::Nurse => &[
                StaffRead,
                PatientRead,
                PatientWrite,
                PatientAllergyRead,
                PatientMedicationRead,
                PatientClinicalRead,
                ScheduleRead,
                AppointmentRead,
                QueueRead,
                QueueManage,
                QueueCall,
                VitalsWrite,
                PrescriptionRead,
                SyncStatus,
            ],
            Role::Receptionist => &[
                StaffRead,
                PatientRead,
                PatientWrite,
                PatientAllergyRead,
                ScheduleRead,
                AppointmentRead,
                AppointmentWrite,
                QueueRead,
                QueueManage,
                SyncStatus,
            ],
            Role::Pharmacist => &[
                StaffRead,
                PatientRead,
                PatientAllergyRead,
                PatientMedicationRead,
                PrescriptionRead,
                StockRead,
                StockWrite,
                Dispense,
                SyncStatus,
            ],
            Role::Cashier => &[
                StaffRead,
                PatientRead,
                AppointmentRead,
                BillingRead,
                BillingWrite,
                SyncStatus,
            ],
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Type,
)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// No sign-in needed (setup, login, app info).
    Public,
    /// Any signed-in person, for their own account and session.
    Authenticated,
    /// See the staff directory (names and roles, for pickers).
    StaffRead,
    /// Create, edit and disable accounts; reset passwords and 2FA.
    StaffManage,
    AuditRead,
    /// Clinic profile and security policy.
    SettingsManage,
    /// Re-key the database; replace the recovery key.
    KeysManage,
    /// A patient's demographics (name, birth date, contacts, IDs, insurance).
    PatientRead,
    PatientWrite,
    /// Allergies and blood group: the safety data every carer needs.
    PatientAllergyRead,
    /// Current medications.
    PatientMedicationRead,
    /// Chronic conditions, medical history and notes.
    PatientClinicalRead,
    /// Doctor profiles, specializations, working hours and exceptions.
    DoctorManage,
    ScheduleRead,
    AppointmentRead,
    AppointmentWrite,
    QueueRead,
    /// Check in, issue tickets, mark people who left.
    QueueManage,
    /// Call the next patient into a room.
    QueueCall,
    /// Open and close visits; write notes, diagnoses and the problem list (doctors).
    ClinicalWrite,
    /// Record vitals (doctors and nurses).
    VitalsWrite,
    /// Prescriptions and the formulary (doctors, nurses, pharmacists).
    PrescriptionRead,
    /// The pharmacy's stock: items, batches, the ledger, orders, alerts, reports.
    StockRead,
    /// Receive, adjust and count stock; suppliers and purchase orders (pharmacists).
    StockWrite,
    /// Dispense signed prescriptions (pharmacists).
    Dispense,
    /// Change prices: the pharmacy's selling prices and the price list (admins; not
    /// pharmacists).
    PriceManage,
    /// Invoices, payments, claims and daily closes: see them.
    BillingRead,
    /// Make and issue invoices, take payments and refunds, insurance and claims, close the
    /// day (cashiers).
    BillingWrite,
    /// Void an issued invoice (admins).
    InvoiceVoid,
    /// Discount beyond the cashier's limit (admins).
    DiscountOverLimit,
    /// See whether this PC is in sync with the clinic's server, and sync now (everyone).
    SyncStatus,
    /// Connect this PC to a server, invite PCs, revoke them, resolve conflicts (admins).
    SyncManage,
}

/// Whether someone holding `roles` may use something that needs `perm`.
pub fn allowed(roles: &[Role], perm: Permission) -> bool {
    match perm {
        Permission::Public | Permission::Authenticated => true,
        p => roles.iter().any(|r| r.grants().contains(&p)),
    }
}

macro_rules! define_command_enum {
    ($( $section:ident { $( $(#[$kind:ident])? $name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty = $perm:ident ; )* } )*) => {
        /// Every command the window can call, named exactly as the Tauri command, from the
        /// command table (crates/clinic-commands).
        #[allow(non_camel_case_types)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Command { $($($name,)*)* }

        impl Command {
            pub const ALL: &'static [Command] = &[$($(Command::$name,)*)*];

            pub fn permission(self) -> Permission {
                match self { $($(Command::$name => Permission::$perm,)*)* }
            }

            pub fn name(self) -> &'static str {
                match self { $($(Command::$name => stringify!($name),)*)* }
            }

            /// The section of the table (= the domain) the command belongs to.
            pub fn section(self) -> &'static str {
                match self { $($(Command::$name => stringify!($section),)*)* }
            }
        }
    };
}

clinic_commands::for_each_command!(define_command_enum);

/// The screens of the app. Which ones a person sees follows from their permissions,
/// so the navigation never offers a screen whose commands would be refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum Screen {
    Home,
    Reception,
    Calendar,
    Queue,
    Consultation,
    Pharmacy,
    Billing,
    Doctors,
    Staff,
    Audit,
    Settings,
    Sync,
    Account,
}

pub fn screens_for(roles: &[Role]) -> Vec<Screen> {
    let can = |p| allowed(roles, p);
    let mut s = vec![Screen::Home];
    if can(Permission::PatientWrite)
        && can(Permission::AppointmentWrite)
        && can(Permission::QueueManage)
    {
        s.push(Screen::Reception);
    }
    if can(Permission::AppointmentRead) && can(Permission::ScheduleRead) {
        s.push(Screen::Calendar);
    }
    if can(Permission::QueueCall) {
        s.push(Screen::Queue);
    }
    if can(Permission::VitalsWrite) && can(Permission::PatientClinicalRead) {
        s.push(Screen::Consultation);
    }
    if can(Permission::StockRead) {
        s.push(Screen::Pharmacy);
    }
    if can(Permission::BillingRead) {
        s.push(Screen::Billing);
    }
    if can(Permission::DoctorManage) {
        s.push(Screen::Doctors);
    }
    if can(Permission::StaffManage) {
        s.push(Screen::Staff);
    }
    if can(Permission::AuditRead) {
        s.push(Screen::Audit);
    }
    if can(Permission::SettingsManage) {
        s.push(Screen::Settings);
    }
    if can(Permission::SyncManage) {
        s.push(Screen::Sync);
    }
    s.push(Screen::Account);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_names_are_unique() {
        let mut names: Vec<_> = Command::ALL.iter().map(|c| c.name()).collect();
        names.sort();
        let n = names.len();
        names.dedup();
        assert_eq!(n, names.len(), "two commands share a name");
    }

    #[test]
    fn stock_is_the_pharmacists_and_prices_the_admins() {
        use Permission::*;
        for r in Role::ALL {
            let pharmacist = r == Role::Pharmacist;
            for p in [StockWrite, Dispense] {
                assert_eq!(allowed(&[r], p), pharmacist, "{r:?} {p:?}");
            }
            assert_eq!(allowed(&[r], PriceManage), r == Role::Admin, "{r:?}");
            // Receptionists and cashiers (and the clinical staff) see no stock screen.
            let sees = matches!(r, Role::Pharmacist | Role::Admin);
            assert_eq!(allowed(&[r], StockRead), sees, "{r:?}");
            assert_eq!(screens_for(&[r]).contains(&Screen::Pharmacy), sees, "{r:?}");
        }
    }

    #[test]
    fn cashiers_bill_and_only_admins_void_discount_beyond_the_limit_or_price() {
        use Permission::*;
        for r in Role::ALL {
            let (cashier, admin) = (r == Role::Cashier, r == Role::Admin);
            assert_eq!(allowed(&[r], BillingWrite), cashier || admin, "{r:?}");
            assert_eq!(allowed(&[r], BillingRead), cashier || admin, "{r:?}");
            for p in [InvoiceVoid, DiscountOverLimit, PriceManage] {
                assert_eq!(allowed(&[r], p), admin, "{r:?} {p:?}");
            }
            assert_eq!(
                screens_for(&[r]).contains(&Screen::Billing),
                cashier || admin,
                "{r:?}"
            );
        }
    }

    #[test]
    fn nobody_but_admin_manages_staff_or_reads_audit() {
        for r in Role::ALL {
            assert_eq!(
                allowed(&[r], Permission::StaffManage),
                r == Role::Admin,
                "{r:?}"
            );
            assert_eq!(
                allowed(&[r], Permission::AuditRead),
                r == Role::Admin,
                "{r:?}"
            );
        }
        assert!(
            allowed(&[Role::Cashier, Role::Admin], Permission::StaffManage),
            "roles add up"
        );
        assert!(
            !allowed(&[], Permission::PatientRead),
            "no role, no permission"
        );
    }

    #[test]
    fn receptionist_sees_reception_not_admin_screens() {
        let s = screens_for(&[Role::Receptionist]);
        assert!(
            s.contains(&Screen::Reception)
                && s.contains(&Screen::Calendar)
                && s.contains(&Screen::Account)
        );
        assert!(
            !s.contains(&Screen::Queue),
            "calling patients is the doctor's and nurse's"
        );
        assert!(
            !s.contains(&Screen::Staff)
                && !s.contains(&Screen::Audit)
                && !s.contains(&Screen::Settings)
        );
    }
}
