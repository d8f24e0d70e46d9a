// The component of each screen. A `Screen` that Rust adds (perm.rs) is a type error here
// until it has one, so the navigation never offers a screen the window can't show.
import type { Component } from "svelte";
import type { Screen } from "../lib/bindings";
import Account from "./Account.svelte";
import Audit from "./Audit.svelte";
import Billing from "./Billing.svelte";
import Calendar from "./Calendar.svelte";
import Consultation from "./Consultation.svelte";
import Doctors from "./Doctors.svelte";
import Home from "./Home.svelte";
import Pharmacy from "./Pharmacy.svelte";
import Queue from "./Queue.svelte";
import Reception from "./Reception.svelte";
import Settings from "./Settings.svelte";
import Staff from "./Staff.svelte";
import Sync from "./Sync.svelte";

export const SCREENS: Record<Screen, Component> = {
  home: Home,
  reception: Reception,
  calendar: Calendar,
  queue: Queue,
  consultation: Consultation,
  pharmacy: Pharmacy,
  billing: Billing,
  doctors: Doctors,
  staff: Staff,
  audit: Audit,
  settings: Settings,
  sync: Sync,
  account: Account,
};
