#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    #[cfg(target_os = "linux")]
    lapwing::lean::restart_without_gl_probing();
    lapwing::run();
}
