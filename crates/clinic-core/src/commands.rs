//! The command table (crates/clinic-commands) as `Core`'s methods: one per command. A
//! method checks the session and the permission (`Core::run`), then calls
//! `api::<section>::<command>`. Commands marked `#[window]` get no method here: src-tauri
//! implements them. (The `Command` enum is generated from the same table in `perm.rs`.)

use crate::core::Core;
use crate::error::Result;
use crate::perm::Command;
// The table names types from the crate's root (`patients::Patient`): every module is in scope.
#[allow(unused_imports)]
use crate::*;

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
        $($( core_method!($($kind)?; $section $name ($($arg : $ty),*) -> $ret); )*)*

        #[cfg(feature = "dev-data")]
        impl Core {
            /// Calls `cmd` with every argument at its default (empty text, zero, nothing
            /// chosen): each command then either answers harmlessly or refuses the input. The
            /// role × command matrix test calls every command this way as every role, so a
            /// new line in the table is in the matrix without anything else to write.
            /// Window commands are checked as the window checks them (`authorize`).
            pub fn call_with_defaults(&self, cmd: Command) -> Result<()> {
                match cmd {
                    $($( Command::$name => call_default!($($kind)?; self $name ($($arg : $ty),*)), )*)*
                }
            }
        }
    };
}

#[cfg(feature = "dev-data")]
macro_rules! call_default {
    (window; $core:ident $name:ident ($($rest:tt)*)) => {
        $core.window_core_half(Command::$name)
    };
    (; $core:ident $name:ident ($($arg:ident : $ty:ty),*)) => {
        $core.$name($(<$ty>::default()),*).map(drop)
    };
}

clinic_commands::for_each_command!(define_commands);
