//! The command table (crates/clinic-commands) as the core uses it: the `Command` enum with
//! each command's name and permission, and one `Core` method per command. A method checks
//! the session and the permission (`Core::run`), then calls `api::<section>::<command>`.
//! Commands marked `#[window]` get no method here: src-tauri implements them.

#[allow(unused_imports)]
use crate::{patients, queue, scheduling, session, settings, staff, store};
use crate::core::Core;
use crate::error::Result;
use crate::perm::Permission;

macro_rules! core_method {
    (window; $($rest:tt)*) => {};
    (; $section:ident $name:ident ($($arg:ident : $ty:ty),*) -> $ret:ty) => {
        impl Core {
            pub fn $name(&self, $($arg: $ty),*) -> Result<$ret> {
                self.run(Command::$name, |cx| crate::api::$section::$name(cx, $($arg),*))
            }
        }
    };
}

macro_rules! define_commands {
    ($( $section:ident { $( $(#[$kind:ident])? $name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty = $perm:ident ; )* } )*) => {
        /// Every command the window can call, named exactly as the Tauri command.
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

        $($( core_method!($($kind)?; $section $name ($($arg : $ty),*) -> $ret); )*)*
    };
}

clinic_commands::for_each_command!(define_commands);

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
}
