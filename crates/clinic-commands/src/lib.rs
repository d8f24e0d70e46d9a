//! The command table: every command the window can call, written once, with its arguments,
//! its answer and the permission it needs. Nothing else lists commands.
//!
//! `for_each_command!(then)` hands the whole table to the macro `then`, which generates what
//! its crate needs from it:
//! - clinic-core (`commands.rs`): the `Command` enum with each command's name and
//!   permission, and one `Core` method per command that checks the session and the
//!   permission, then calls the handler `api::<section>::<command>`;
//! - src-tauri (`lib.rs`): the `#[tauri::command]` functions, the specta builder that writes
//!   `ui/src/lib/bindings.ts` (with each section's `Field`, `Table` and `Error` types for the
//!   translations), and the test against the role matrix;
//! - src-tauri's `build.rs`: the ACL entries (`allow-<command>`) the main window is granted.
//!
//! Each section is a domain: `clinic_core::<section>` holds its model, SQL, `Field`, `Table`
//! and `Error` types, and `clinic_core::api::<section>` its thin handlers. Types are written
//! relative to the core's root (`patients::PatientInput`). A line marked `#[window]` is a
//! command src-tauri implements itself (it opens a window or a native dialog); it is still
//! named and permission-checked here.
//!
//! Adding a command: one line here, plus its handler in `api/<section>.rs`.

#[macro_export]
macro_rules! for_each_command {
    ($then:ident) => {
        $then! {
            // First run, sign-in, and one's own session and account.
            session {
                app_info() -> session::AppInfo = Public;
                setup_status() -> bool = Public;
                setup_create(input: session::SetupInput) -> session::SetupResult = Public;
                #[window] recovery_sheet_save(recovery_key: String) -> Option<String> = Public;
                #[window] recovery_sheet_print(recovery_key: String) -> Option<String> = Public;
                login(username: String, password: String) -> session::LoginStep = Public;
                login_totp(code: String) -> session::LoginDone = Public;
                recover_account(recovery_key: String, username: String, new_password: String) -> () = Public;
                session_info() -> session::SessionInfo = Authenticated;
                session_touch() -> () = Authenticated;
                logout() -> () = Public;
                lock() -> () = Authenticated;
                unlock(password: String) -> session::SessionInfo = Authenticated;
                change_password(old_password: String, new_password: String) -> session::SessionInfo = Authenticated;
                set_language(language: settings::Language) -> session::SessionInfo = Authenticated;
                recovery_key_rotate() -> session::RecoveryKey = KeysManage;
                database_rekey() -> session::RekeyReport = KeysManage;
                database_rekey_progress() -> session::RekeyProgress = KeysManage;
            }
            // Staff accounts.
            staff {
                staff_list() -> Vec<staff::StaffPick> = StaffRead;
                staff_accounts() -> Vec<staff::Staff> = StaffManage;
                staff_get(id: String) -> staff::Staff = StaffManage;
                staff_create(input: staff::NewStaff) -> staff::Staff = StaffManage;
                staff_update(input: staff::StaffUpdate) -> staff::Staff = StaffManage;
                staff_set_active(input: staff::SetActive) -> staff::Staff = StaffManage;
                staff_reset_password(id: String, new_password: String) -> staff::Staff = StaffManage;
                staff_reset_totp(id: String) -> staff::Staff = StaffManage;
            }
            // Clinic settings and the audit trail.
            settings {
                settings_get() -> settings::Settings = Authenticated;
                settings_update(input: settings::Settings) -> settings::Settings = SettingsManage;
                clinic_logo() -> Option<settings::logo::Logo> = Authenticated;
                clinic_logo_set(base64: String) -> settings::logo::Logo = SettingsManage;
                clinic_logo_clear() -> () = SettingsManage;
                #[window] test_page_save() -> Option<String> = SettingsManage;
                #[window] test_page_print() -> Option<String> = SettingsManage;
                audit_list(filter: store::audit::AuditFilter) -> store::audit::AuditPage = AuditRead;
                audit_verify() -> store::audit::ChainStatus = AuditRead;
            }
            // The patient registry.
            patients {
                patient_search(text: String, offset: u32, limit: u32) -> patients::SearchPage = PatientRead;
                patient_get(id: String) -> patients::Patient = PatientRead;
                patient_register(input: patients::PatientInput, allow_duplicates: bool) -> patients::RegisterOutcome = PatientWrite;
                patient_update(id: String, input: patients::PatientInput) -> patients::Patient = PatientWrite;
                patient_set_photo(id: String, mime: String, base64: String) -> () = PatientWrite;
                patient_photo(id: String) -> Option<String> = PatientRead;
            }
            // Doctors, their hours and leave, appointments.
            scheduling {
                specialization_list() -> Vec<scheduling::Specialization> = ScheduleRead;
                specialization_save(input: scheduling::Specialization) -> scheduling::Specialization = DoctorManage;
                doctor_list() -> Vec<scheduling::Doctor> = ScheduleRead;
                doctor_save(input: scheduling::Doctor) -> scheduling::Doctor = DoctorManage;
                doctor_hours_get(doctor_id: String) -> Vec<scheduling::WorkingBlock> = ScheduleRead;
                doctor_hours_set(doctor_id: String, blocks: Vec<scheduling::WorkingBlock>) -> Vec<scheduling::WorkingBlock> = DoctorManage;
                exception_list(doctor_id: Option<String>, from: String, to: String) -> Vec<scheduling::ScheduleException> = ScheduleRead;
                exception_add(input: scheduling::ScheduleException) -> scheduling::ScheduleException = DoctorManage;
                exception_remove(id: String) -> () = DoctorManage;
                slots_find(query: scheduling::SlotQuery) -> Vec<scheduling::Slot> = AppointmentRead;
                appointment_book(input: scheduling::BookInput) -> scheduling::Appointment = AppointmentWrite;
                appointment_book_first_free(query: scheduling::FirstFreeQuery) -> scheduling::Appointment = AppointmentWrite;
                appointment_set_status(id: String, status: scheduling::AppointmentStatus, reason: String) -> scheduling::Appointment = AppointmentWrite;
                appointment_reschedule(input: scheduling::RescheduleInput) -> scheduling::Appointment = AppointmentWrite;
                appointment_history(id: String) -> Vec<scheduling::HistoryEntry> = AppointmentRead;
                appointments_calendar(query: scheduling::CalendarQuery) -> Vec<scheduling::CalendarEntry> = AppointmentRead;
                appointments_for_patient(patient_id: String) -> Vec<scheduling::CalendarEntry> = AppointmentRead;
            }
            // Check-in, the waiting queue and the waiting-room board.
            queue {
                queue_check_in(input: queue::CheckIn) -> queue::Ticket = QueueManage;
                queue_today() -> queue::QueueToday = QueueRead;
                queue_call_next(doctor_id: Option<String>) -> queue::Ticket = QueueCall;
                queue_advance(ticket_id: String, to: queue::TicketStatus) -> queue::Ticket = QueueCall;
                queue_mark_left(ticket_id: String) -> queue::Ticket = QueueManage;
                queue_board() -> queue::Board = Public;
                #[window] open_queue_board() -> () = QueueRead;
            }
            // Consultation: visits, vitals, notes, diagnoses, the problem list.
            clinical {
                consultation_workspace() -> clinical::Workspace = ClinicalWrite;
                encounter_call_next() -> clinical::Encounter = ClinicalWrite;
                encounter_open(patient_id: String) -> clinical::Encounter = ClinicalWrite;
                encounter_get(id: String) -> clinical::EncounterView = PatientClinicalRead;
                encounter_close(input: clinical::CloseInput) -> clinical::Encounter = ClinicalWrite;
                patient_header(patient_id: String) -> clinical::PatientHeader = PatientClinicalRead;
                vitals_record(input: clinical::vitals::VitalsInput) -> Vec<clinical::vitals::Vital> = VitalsWrite;
                vitals_history(patient_id: String, kind: Option<clinical::vitals::VitalKind>) -> Vec<clinical::vitals::Vital> = PatientClinicalRead;
                note_draft_save(input: clinical::notes::DraftInput) -> clinical::notes::Draft = ClinicalWrite;
                note_draft_discard(encounter_id: String) -> () = ClinicalWrite;
                note_sign(encounter_id: String) -> clinical::notes::Note = ClinicalWrite;
                note_addendum_add(note_id: String, text: String) -> clinical::notes::Addendum = ClinicalWrite;
                icd_search(text: String, limit: u32) -> Vec<clinical::icd10::IcdCode> = PatientClinicalRead;
                icd_local_name_set(code: String, language: settings::Language, name: String) -> () = ClinicalWrite;
                diagnosis_add(input: clinical::diagnoses::DiagnosisInput) -> clinical::diagnoses::Diagnosis = ClinicalWrite;
                diagnosis_remove(id: String) -> () = ClinicalWrite;
                problem_list(patient_id: String) -> Vec<clinical::diagnoses::Problem> = PatientClinicalRead;
                problem_set_status(id: String, status: clinical::diagnoses::ProblemStatus) -> clinical::diagnoses::Problem = ClinicalWrite;
                drug_search(text: String, limit: u32) -> Vec<clinical::prescriptions::Drug> = PrescriptionRead;
                prescription_open(encounter_id: String) -> clinical::prescriptions::Prescription = ClinicalWrite;
                prescription_get(id: String) -> clinical::prescriptions::Prescription = PrescriptionRead;
                prescriptions_for_patient(patient_id: String) -> Vec<clinical::prescriptions::Prescription> = PrescriptionRead;
                prescription_item_add(input: clinical::prescriptions::ItemInput) -> clinical::prescriptions::Prescription = ClinicalWrite;
                prescription_item_remove(item_id: String) -> clinical::prescriptions::Prescription = ClinicalWrite;
                prescription_sign(id: String, acknowledgements: Vec<clinical::prescriptions::Acknowledgement>) -> clinical::prescriptions::Prescription = ClinicalWrite;
                prescription_renew(id: String, encounter_id: String) -> clinical::prescriptions::Prescription = ClinicalWrite;
                lab_tests() -> Vec<clinical::lab::LabTest> = PatientClinicalRead;
                lab_order(encounter_id: String, test_id: String) -> clinical::lab::LabOrder = ClinicalWrite;
                lab_result(order_id: String, value: f64, comment: String) -> clinical::lab::LabOrder = VitalsWrite;
                lab_results(patient_id: String, test_id: Option<String>) -> Vec<clinical::lab::LabOrder> = PatientClinicalRead;
                record_add(input: clinical::records::RecordInput) -> clinical::records::TimelineEntry = ClinicalWrite;
                record_attach(record_id: String, file_name: String, base64: String) -> clinical::records::AttachmentInfo = ClinicalWrite;
                attachment_view(id: String) -> String = PatientClinicalRead;
                #[window] attachment_save(id: String) -> Option<String> = PatientClinicalRead;
                patient_timeline(query: clinical::records::TimelineQuery) -> Vec<clinical::records::TimelineEntry> = PatientClinicalRead;
                follow_ups_due() -> Vec<clinical::FollowUpDue> = AppointmentRead;
                follow_up_book(encounter_id: String) -> scheduling::Appointment = AppointmentWrite;
                #[window] prescription_save(id: String, language: Option<settings::Language>) -> Option<String> = PrescriptionRead;
                #[window] prescription_print(id: String, language: Option<settings::Language>) -> Option<String> = PrescriptionRead;
            }
            // The pharmacy: stock, the ledger, purchase orders, dispensing, alerts, reports.
            pharmacy {
                stock_items(text: String, category: Option<pharmacy::Category>) -> Vec<pharmacy::StockItem> = StockRead;
                stock_item_get(id: String) -> pharmacy::StockItem = StockRead;
                stock_item_save(input: pharmacy::StockItemInput) -> pharmacy::StockItem = StockWrite;
                stock_item_price_set(id: String, cost: i64, price: i64) -> pharmacy::StockItem = PriceManage;
                stock_batches(item_id: String, all: bool) -> Vec<pharmacy::Batch> = StockRead;
                stock_scan(code: String) -> pharmacy::scan::Scanned = StockRead;
                stock_receive(input: pharmacy::ReceiveInput) -> pharmacy::Batch = StockWrite;
                stock_move(batch_id: String, kind: pharmacy::ledger::MoveKind, quantity: i64, reason: String) -> pharmacy::ledger::Move = StockWrite;
                stock_count(input: pharmacy::ledger::CountInput) -> pharmacy::ledger::StockCount = StockWrite;
                stock_history(item_id: Option<String>, batch_id: Option<String>) -> Vec<pharmacy::ledger::Move> = StockRead;
                stock_alerts() -> pharmacy::Alerts = StockRead;
                stock_alert_counts() -> pharmacy::AlertCounts = StockRead;
                pharmacy_settings_get() -> pharmacy::PharmacySettings = StockRead;
                pharmacy_settings_set(input: pharmacy::PharmacySettings) -> pharmacy::PharmacySettings = StockWrite;
                suppliers() -> Vec<pharmacy::Supplier> = StockRead;
                supplier_save(input: pharmacy::Supplier) -> pharmacy::Supplier = StockWrite;
                purchase_orders(open_only: bool) -> Vec<pharmacy::orders::PurchaseOrder> = StockRead;
                purchase_order_create(input: pharmacy::orders::OrderInput) -> pharmacy::orders::PurchaseOrder = StockWrite;
                purchase_order_cancel(id: String) -> pharmacy::orders::PurchaseOrder = StockWrite;
                dispense_queue() -> Vec<pharmacy::dispense::QueueEntry> = Dispense;
                dispense_plan(prescription_id: String) -> pharmacy::dispense::Plan = Dispense;
                dispense(input: pharmacy::dispense::DispenseInput) -> pharmacy::dispense::DispenseOutcome = Dispense;
                billables_pending(patient_id: String) -> Vec<pharmacy::dispense::Billable> = Dispense;
                stock_report(query: pharmacy::reports::ReportQuery) -> pharmacy::reports::Report = StockRead;
                #[window] stock_report_save(query: pharmacy::reports::ReportQuery, language: Option<settings::Language>) -> Option<String> = StockRead;
                #[window] stock_report_print(query: pharmacy::reports::ReportQuery, language: Option<settings::Language>) -> Option<String> = StockRead;
                #[window] dispense_label_save(ids: Vec<String>, language: Option<settings::Language>) -> Option<String> = Dispense;
                #[window] dispense_label_print(ids: Vec<String>, language: Option<settings::Language>) -> Option<String> = Dispense;
            }
            // Billing: prices, invoices, payments, insurance, claims, the daily close.
            billing {
                billing_settings_get() -> billing::BillingSettings = BillingRead;
                billing_settings_set(input: billing::BillingSettings) -> billing::BillingSettings = SettingsManage;
                price_list(all: bool) -> Vec<billing::Price> = BillingRead;
                price_save(input: billing::PriceInput) -> billing::Price = PriceManage;
                visits_to_bill() -> Vec<billing::invoices::VisitToBill> = BillingRead;
                invoice_for_visit(encounter_id: String) -> billing::invoices::Invoice = BillingWrite;
                invoice_new(patient_id: String) -> billing::invoices::Invoice = BillingWrite;
                invoice_get(id: String) -> billing::invoices::Invoice = BillingRead;
                invoices_for_patient(patient_id: String) -> Vec<billing::invoices::InvoiceRow> = BillingRead;
                invoice_line_add(input: billing::invoices::LineInput) -> billing::invoices::Invoice = BillingWrite;
                invoice_line_remove(line_id: String) -> billing::invoices::Invoice = BillingWrite;
                invoice_line_discount(line_id: String, amount: i64, reason: String) -> billing::invoices::Invoice = BillingWrite;
                invoice_discount(invoice_id: String, amount: i64, reason: String) -> billing::invoices::Invoice = BillingWrite;
                invoice_issue(id: String) -> billing::invoices::Invoice = BillingWrite;
                invoice_void(id: String, reason: String) -> billing::invoices::Invoice = InvoiceVoid;
                payment_take(input: billing::payments::PaymentInput) -> billing::payments::PaymentOutcome = BillingWrite;
                outstanding_invoices(patient_id: Option<String>) -> billing::invoices::Outstanding = BillingRead;
                policies(patient_id: String) -> Vec<billing::Policy> = BillingRead;
                policy_save(input: billing::Policy) -> billing::Policy = BillingWrite;
                claims(status: Option<billing::claims::ClaimStatus>) -> Vec<billing::claims::Claim> = BillingRead;
                claim_create(invoice_id: String) -> billing::claims::Claim = BillingWrite;
                claim_update(input: billing::claims::ClaimUpdate) -> billing::claims::Claim = BillingWrite;
                daily_close_preview(counted: Vec<billing::close::Denomination>) -> billing::close::DailyClose = BillingWrite;
                daily_close(input: billing::close::DayCloseInput) -> billing::close::DailyClose = BillingWrite;
                daily_closes() -> Vec<billing::close::DailyClose> = BillingRead;
                #[window] invoice_save(id: String, language: Option<settings::Language>) -> Option<String> = BillingRead;
                #[window] invoice_print(id: String, language: Option<settings::Language>) -> Option<String> = BillingRead;
                #[window] receipt_save(id: String, language: Option<settings::Language>) -> Option<String> = BillingRead;
                #[window] receipt_print(id: String, language: Option<settings::Language>) -> Option<String> = BillingRead;
                #[window] daily_close_save(id: String, language: Option<settings::Language>) -> Option<String> = BillingRead;
                #[window] daily_close_print(id: String, language: Option<settings::Language>) -> Option<String> = BillingRead;
            }
            // Sync with the clinic's server: status, joining, devices, conflicts.
            sync {
                sync_status() -> sync::Status = SyncStatus;
                sync_now() -> sync::Status = SyncStatus;
                sync_connect(input: sync::ConnectInput) -> sync::Status = SyncManage;
                sync_invite(valid_minutes: u32) -> sync::Invite = SyncManage;
                sync_devices() -> Vec<sync::DeviceRow> = SyncManage;
                sync_revoke(device_id: String) -> Vec<sync::DeviceRow> = SyncManage;
                sync_conflicts(open_only: bool) -> Vec<sync::Conflict> = SyncManage;
                sync_conflict_resolve(id: String, note: String) -> sync::Conflict = SyncManage;
                sync_double_bookings() -> Vec<sync::DoubleBooking> = AppointmentRead;
                sync_join_start(input: sync::ConnectInput) -> () = Public;
                sync_join_progress() -> sync::JoinProgress = Public;
            }
        }
    };
}
