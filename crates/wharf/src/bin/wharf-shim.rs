//! `wharf-shim`, the per-dyno holder the server starts for each container (see the
//! `wharf-shim` crate). A binary of its own, without the server's allocator or runtime, so it
//! stays small.

fn main() {
    std::process::exit(wharf_shim::main())
}
