//! The Lambda entrypoint: everything is in [`lambda_image::runtime`], which thumbctl's binary
//! also runs when Lambda starts it as the function.

use std::process::ExitCode;

fn main() -> ExitCode {
    lambda_image::runtime::run()
}
