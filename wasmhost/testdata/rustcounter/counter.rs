// counter.rs: upstream Stateroom's counter example (examples/counter-service:
// a shared i32 that "increment" and "decrement" change, broadcast as
// "new value: N" after every message) with by hand what upstream's
// #[stateroom_wasm] macro generates around it: the exports of the ABI
// (internal/abi/ABI.md), bincode decoding of MessageToProcess and encoding
// of MessageFromProcess, the service built at Init. No crates: the
// stateroom-wasm crate cannot be fetched here, and what matters for the
// host's raw snapshots is what rustc makes of a Rust service: its std
// allocator (dlmalloc), its 1 MiB shadow stack, its static data.
//
// Built with Debian's rustc and its wasm32-wasi standard library (build.sh);
// no snapshot exports, as no upstream module has them.

use std::alloc::{alloc, dealloc, Layout};

#[no_mangle]
pub static STATEROOM_API_VERSION: i32 = 1;
#[no_mangle]
pub static STATEROOM_API_PROTOCOL: i32 = 0;

#[link(wasm_import_module = "env")]
extern "C" {
    fn stateroom_send(ptr: *const u8, len: u32);
}

/// The service: upstream's SharedCounterServer.
struct SharedCounterServer(i32);

impl SharedCounterServer {
    fn message(&mut self, message: &str) {
        match message {
            "increment" => self.0 += 1,
            "decrement" => self.0 -= 1,
            _ => (),
        }
        broadcast_text(&format!("new value: {}", self.0));
    }
}

static mut SERVICE: Option<SharedCounterServer> = None;

/// MessageFromProcess::Message { recipient: Broadcast, payload: Text(s) }.
fn broadcast_text(s: &str) {
    let mut out = Vec::with_capacity(20 + s.len());
    out.extend_from_slice(&0u32.to_le_bytes()); // Message
    out.extend_from_slice(&0u32.to_le_bytes()); // Broadcast
    out.extend_from_slice(&1u32.to_le_bytes()); // Text
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    unsafe { stateroom_send(out.as_ptr(), out.len() as u32) };
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

#[no_mangle]
pub extern "C" fn stateroom_recv(ptr: *const u8, len: u32) {
    let msg = unsafe { std::slice::from_raw_parts(ptr, len as usize) };
    let svc = unsafe { &mut SERVICE };
    match u32_at(msg, 0) {
        Some(0) => *svc = Some(SharedCounterServer(0)), // Init
        Some(3) => {
            // Message { sender, payload }: only Text matters to the counter.
            if u32_at(msg, 8) != Some(1) {
                return;
            }
            let n = match msg.get(12..20) {
                Some(b) => u64::from_le_bytes(b.try_into().unwrap()) as usize,
                None => return,
            };
            if let (Some(s), Some(text)) = (svc.as_mut(), msg.get(20..20 + n)) {
                s.message(std::str::from_utf8(text).unwrap_or(""));
            }
        }
        _ => (), // Connect, Disconnect, Timer: the counter ignores them
    }
}

#[no_mangle]
pub extern "C" fn stateroom_malloc(size: u32) -> *mut u8 {
    if size == 0 {
        return std::ptr::null_mut();
    }
    unsafe { alloc(Layout::from_size_align_unchecked(size as usize, 1)) }
}

#[no_mangle]
pub extern "C" fn stateroom_free(ptr: *mut u8, size: u32) {
    if size == 0 {
        return;
    }
    unsafe { dealloc(ptr, Layout::from_size_align_unchecked(size as usize, 1)) }
}
