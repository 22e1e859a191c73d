//! Shared values between processes: the ticket counter on a `Value`, an
//! `Array` written by children, atomics without a lock, named
//! `SharedMemory` opened by name and unlinked, bad names and sizes.
mod common;
use common::JoinInTime;

use std::sync::atomic::{AtomicI64, Ordering};

use multiproc::process::Process;
use multiproc::shared::{Array, Atomic, SharedMemory, Value};
use std::os::fd::AsFd;

#[test]
fn ticket_counter_on_a_value_is_exact() {
    let _c = common::clean();
    let tickets = Value::new(30_000i64).unwrap();
    let mut sellers: Vec<_> = (0..3)
        .map(|_| {
            Process::start(
                |t: Value<i64>| {
                    for _ in 0..10_000 {
                        *t.get_lock().lock().unwrap() -= 1;
                    }
                },
                tickets.clone(),
            )
            .unwrap()
        })
        .collect();
    for s in &mut sellers {
        s.join_in_time().unwrap();
    }
    assert_eq!(tickets.get(), 0);
    tickets.set(5);
    assert_eq!(tickets.get(), 5);
}

#[test]
fn array_written_by_children() {
    let _c = common::clean();
    let a = Array::<u64>::zeroed(1000).unwrap();
    assert_eq!((a.len(), a.is_empty()), (1000, false));
    let mut ps: Vec<_> = (0..4u64)
        .map(|k| {
            Process::start(
                |(a, k): (Array<u64>, u64)| {
                    let mut g = a.lock().unwrap();
                    for (i, x) in g.iter_mut().enumerate() {
                        if i as u64 % 4 == k {
                            *x = i as u64 * 3;
                        }
                    }
                },
                (a.clone(), k),
            )
            .unwrap()
        })
        .collect();
    for p in &mut ps {
        p.join_in_time().unwrap();
    }
    assert_eq!(a.to_vec(), (0..1000).map(|i| i * 3).collect::<Vec<u64>>());
    assert!(a.set(999, 1));
    assert!(!a.set(1000, 1));
    assert_eq!((a.get(999), a.get(1000)), (Some(1), None));
    let empty = Array::<u8>::new(&[]).unwrap();
    assert!(empty.is_empty() && empty.to_vec().is_empty());
}

#[test]
fn atomics_without_a_lock() {
    let _c = common::clean();
    let n = Atomic::<AtomicI64>::new(0).unwrap();
    let mut ps: Vec<_> = (0..3)
        .map(|_| {
            Process::start(
                |n: Atomic<AtomicI64>| {
                    for _ in 0..10_000 {
                        n.fetch_add(1, Ordering::Relaxed);
                    }
                },
                n.clone(),
            )
            .unwrap()
        })
        .collect();
    for _ in 0..10_000 {
        n.fetch_sub(1, Ordering::Relaxed);
    }
    for p in &mut ps {
        p.join_in_time().unwrap();
    }
    assert_eq!(n.load(Ordering::Relaxed), 20_000);
}

#[test]
fn named_shared_memory_between_a_child_and_us() {
    let _c = common::clean();
    let name = format!("multiproc-test-{}", std::process::id());
    let shm = SharedMemory::create(&name, 1 << 16).unwrap();
    assert_eq!(
        (shm.name(), shm.len()),
        (format!("/{name}").as_str(), 1 << 16)
    );
    // A second create of the same name is refused.
    let again = SharedMemory::create(&name, 10).unwrap_err();
    assert_eq!(again.kind(), std::io::ErrorKind::AlreadyExists);
    // A child opens it by name, as an unrelated program would.
    let mut p = Process::start(
        |name: String| {
            let shm = SharedMemory::open(&name).unwrap();
            shm.write_at(100, b"from the child").unwrap();
        },
        name.clone(),
    )
    .unwrap();
    p.join_in_time().unwrap();
    let mut buf = [0u8; 14];
    shm.read_at(100, &mut buf).unwrap();
    assert_eq!(&buf, b"from the child");
    // Out of range: typed errors, no panic.
    assert!(shm.read_at(1 << 16, &mut [0u8; 1]).is_err());
    assert!(shm.write_at(usize::MAX, b"x").is_err());
    shm.unlink().unwrap();
    assert!(!std::path::Path::new(&format!("/dev/shm/{name}")).exists());
    assert_eq!(
        SharedMemory::open(&name).unwrap_err().kind(),
        std::io::ErrorKind::NotFound
    );
    // The mapping stays valid after unlink.
    shm.read_at(100, &mut buf).unwrap();
    assert_eq!(&buf, b"from the child");
}

#[test]
fn bad_names_and_sizes_are_refused() {
    let _c = common::clean();
    for bad in ["", "/", "a/b", "nul\0"] {
        let e = SharedMemory::create(bad, 10).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{bad:?}");
    }
    let name = format!("multiproc-zero-{}", std::process::id());
    assert!(SharedMemory::create(&name, 0).is_err());
    // The failed create left nothing behind.
    assert!(!std::path::Path::new(&format!("/dev/shm/{name}")).exists());
}

mod raw_array {
    use super::*;
    use multiproc::codec::{self, handles::Fd};
    use multiproc::shared::RawArray;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    #[test]
    fn a_raw_array_is_read_everywhere_without_a_lock() {
        let _c = common::clean();
        let data = RawArray::from_fn(100_000, |xs: &mut [u64]| {
            for (i, x) in xs.iter_mut().enumerate() {
                *x = i as u64;
            }
        })
        .unwrap();
        let expected: u64 = data.iter().sum();
        let mut readers: Vec<_> = (0..3)
            .map(|k| {
                Process::start(
                    |(d, k): (RawArray<u64>, usize)| d.iter().skip(k).step_by(3).sum::<u64>(),
                    (data.clone(), k),
                )
                .unwrap()
            })
            .collect();
        let sum: u64 = readers.iter_mut().map(|p| p.join_in_time().unwrap()).sum();
        assert_eq!(sum, expected);
        assert_eq!(RawArray::<u8>::new(&[]).unwrap().len(), 0);
        assert!(RawArray::<()>::new(&[(); 3]).is_err(), "zero-sized items");
    }

    #[test]
    fn nobody_can_write_it_and_unsealed_memory_is_refused() {
        let _c = common::clean();
        let data = RawArray::new(&[1u8, 2, 3]).unwrap();
        // The kernel refuses a write through its descriptor.
        // SAFETY: write(2) of 1 byte from a valid buffer to an open fd.
        let wrote = unsafe { libc::write(data.as_fd().as_raw_fd(), [9u8].as_ptr().cast(), 1) };
        assert_eq!(wrote, -1);
        assert_eq!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::EPERM)
        );
        assert_eq!(&data[..], [1, 2, 3]);
        // A writable memory file sent as a RawArray is refused.
        // SAFETY: memfd_create with a NUL-terminated name; the fd is ours.
        let raw = unsafe { libc::memfd_create(c"forged".as_ptr(), libc::MFD_CLOEXEC) };
        assert!(raw >= 0);
        // SAFETY: `raw` was just returned open by memfd_create.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: ftruncate of our own memory file.
        assert_eq!(unsafe { libc::ftruncate(raw, 4096) }, 0);
        let frame = codec::encode(&(Fd(fd), 3u64), 1 << 20).unwrap();
        let e = codec::decode::<RawArray<u8>>(&frame.bytes[codec::HEADER_LEN..], frame.fds)
            .unwrap_err();
        assert!(e.to_string().contains("not sealed"), "{e}");
    }
}

#[test]
fn shared_memory_travels_as_an_argument_and_the_receiver_may_unlink_it() {
    let _c = common::clean();
    let name = common::unique_name("shm-arg")
        .trim_start_matches('@')
        .to_string();
    let shm = SharedMemory::create(&name, 4096).unwrap();
    shm.write_at(0, b"from the parent").unwrap();
    let mut child = Process::start(
        |shm: SharedMemory| {
            let mut buf = [0u8; 15];
            shm.read_at(0, &mut buf).unwrap();
            shm.write_at(100, b"from the child").unwrap();
            shm.unlink().unwrap();
            buf.to_vec()
        },
        shm.clone(),
    )
    .unwrap();
    assert_eq!(child.join_in_time().unwrap(), b"from the parent");
    let mut buf = [0u8; 14];
    shm.read_at(100, &mut buf).unwrap();
    assert_eq!(&buf, b"from the child");
    assert!(SharedMemory::open(&name).is_err(), "the child unlinked it");
}
