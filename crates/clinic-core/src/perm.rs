//! Roles, permissions, and the one table that says which command needs which
//! permission. Anything not granted here is denied: a role gets exactly the
//! permissions `Role::grants` lists, and a command not in `commands!` cannot be called.

use serde::{Deserialize, Serialize};
use specta::Type;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Type)]
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
    pub const ALL: [Role; 6] =
        [Role::Admin, Role::Doctor, Role::Nurse, Role::Receptionist, Role::Pharmacist, Role::Cashier];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Doctor => "doctor",
            Role::Nurse => "nurse",
            Role::Receptionist => "receptionist",
            Role::Pharmacist => "pharmacist",
            Role::Cashier => "cashier",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
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
                PatientRead,
                PatientWrite,
                DoctorManage,
                ScheduleRead,
                AppointmentRead,
                AppointmentWrite,
                QueueRead,
                QueueManage,
            ],
            Role::Doctor => &[
                StaffRead,
                PatientRead,
                PatientWrite,
                ScheduleRead,
                AppointmentRead,
                AppointmentWrite,
                QueueRead,
                QueueCall,
            ],
            Role::Nurse => &[StaffRead, PatientRead, PatientWrite, ScheduleRead, AppointmentRead, QueueRead, QueueManage, QueueCall],
            Role::Receptionist => &[
                StaffRead,
                PatientRead,
                PatientWrite,
                ScheduleRead,
                AppointmentRead,
                AppointmentWrite,
                QueueRead,
                QueueManage,
            ],
            Role::Pharmacist => &[StaffRead, PatientRead],
            Role::Cashier => &[StaffRead, PatientRead, AppointmentRead],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Type)]
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
    PatientRead,
    PatientWrite,
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
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Public => "public",
            Permission::Authenticated => "authenticated",
            Permission::StaffRead => "staff_read",
            Permission::StaffManage => "staff_manage",
            Permission::AuditRead => "audit_read",
            Permission::SettingsManage => "settings_manage",
            Permission::PatientRead => "patient_read",
            Permission::PatientWrite => "patient_write",
            Permission::DoctorManage => "doctor_manage",
            Permission::ScheduleRead => "schedule_read",
            Permission::AppointmentRead => "appointment_read",
            Permission::AppointmentWrite => "appointment_write",
            Permission::QueueRead => "queue_read",
            Permission::QueueManage => "queue_manage",
            Permission::QueueCall => "queue_call",
        }
    }
}

/// Whether someone holding `roles` may use something that needs `perm`.
pub fn allowed(roles: &[Role], perm: Permission) -> bool {
    match perm {
        Permission::Public | Permission::Authenticated => true,
        p => roles.iter().any(|r| r.grants().contains(&p)),
    }
}

macro_rules! commands {
    ($($name:ident => $perm:ident),* $(,)?) => {
        /// Every command the UI can call, named exactly as the Tauri command.
        #[allow(non_camel_case_types)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Command { $($name),* }

        impl Command {
            pub const ALL: &'static [Command] = &[$(Command::$name),*];

            pub fn permission(self) -> Permission {
                match self { $(Command::$name => Permission::$perm),* }
            }

            pub fn name(self) -> &'static str {
                match self { $(Command::$name => stringify!($name)),* }
            }
        }
    };
}

commands! {
    // Before sign-in.
    app_info => Public,
    setup_status => Public,
    setup_create => Public,
    recovery_sheet_save => Public,
    login => Public,
    login_totp => Public,
    recover_account => Public,
    // Own session and account.
    session_info => Authenticated,
    session_touch => Authenticated,
    logout => Authenticated,
    lock => Authenticated,
    unlock => Authenticated,
    change_password => Authenticated,
    set_language => Authenticated,
    // Staff accounts.
    staff_list => StaffRead,
    staff_get => StaffManage,
    staff_create => StaffManage,
    staff_update => StaffManage,
    staff_set_active => StaffManage,
    staff_reset_password => StaffManage,
    staff_reset_totp => StaffManage,
    // Settings and audit.
    settings_get => Authenticated,
    settings_update => SettingsManage,
    audit_list => AuditRead,
    audit_verify => AuditRead,
    // Patients.
    patient_search => PatientRead,
    patient_get => PatientRead,
    patient_register => PatientWrite,
    patient_update => PatientWrite,
    patient_set_photo => PatientWrite,
    patient_photo => PatientRead,
    // Doctors and schedules.
    specialization_list => ScheduleRead,
    specialization_save => DoctorManage,
    doctor_list => ScheduleRead,
    doctor_save => DoctorManage,
    doctor_hours_get => ScheduleRead,
    doctor_hours_set => DoctorManage,
    exception_list => ScheduleRead,
    exception_add => DoctorManage,
    exception_remove => DoctorManage,
    // Appointments.
    slots_find => AppointmentRead,
    appointment_book => AppointmentWrite,
    appointment_book_first_free => AppointmentWrite,
    appointment_set_status => AppointmentWrite,
    appointment_reschedule => AppointmentWrite,
    appointment_history => AppointmentRead,
    appointments_calendar => AppointmentRead,
    appointments_for_patient => AppointmentRead,
    // Queue.
    queue_check_in => QueueManage,
    queue_today => QueueRead,
    queue_call_next => QueueCall,
    queue_advance => QueueCall,
    queue_mark_left => QueueManage,
    queue_board => Public,
    // Window-side: src-tauri opens the board after `Core::authorize`.
    open_queue_board => QueueRead,
}

/// The screens of the app. Which ones a person sees follows from their permissions,
/// so the navigation never offers a screen whose commands would be refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum Screen {
    Home,
    Reception,
    Calendar,
    Queue,
    Doctors,
    Staff,
    Audit,
    Settings,
    Account,
}

pub fn screens_for(roles: &[Role]) -> Vec<Screen> {
    let can = |p| allowed(roles, p);
    let mut s = vec![Screen::Home];
    if can(Permission::PatientWrite) && can(Permission::AppointmentWrite) && can(Permission::QueueManage) {
        s.push(Screen::Reception);
    }
    if can(Permission::AppointmentRead) && can(Permission::ScheduleRead) {
        s.push(Screen::Calendar);
    }
    if can(Permission::QueueCall) {
        s.push(Screen::Queue);
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
    fn nobody_but_admin_manages_staff_or_reads_audit() {
        for r in Role::ALL {
            assert_eq!(allowed(&[r], Permission::StaffManage), r == Role::Admin, "{r:?}");
            assert_eq!(allowed(&[r], Permission::AuditRead), r == Role::Admin, "{r:?}");
        }
        assert!(allowed(&[Role::Cashier, Role::Admin], Permission::StaffManage), "roles add up");
        assert!(!allowed(&[], Permission::PatientRead), "no role, no permission");
    }

    #[test]
    fn receptionist_sees_reception_not_admin_screens() {
        let s = screens_for(&[Role::Receptionist]);
        assert!(s.contains(&Screen::Reception) && s.contains(&Screen::Calendar) && s.contains(&Screen::Account));
        assert!(!s.contains(&Screen::Queue), "calling patients is the doctor's and nurse's");
        assert!(!s.contains(&Screen::Staff) && !s.contains(&Screen::Audit) && !s.contains(&Screen::Settings));
    }
}
