//! Test fixture: a valid component of the wrong world (a `wasi:cli` command,
//! not a `warden:plugin/tool`). The host must refuse to load it as a plugin.

fn main() {
    println!("I am a command, not a tool plugin");
}
