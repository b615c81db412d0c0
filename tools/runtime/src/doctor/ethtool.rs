//! An interface's `SO_TIMESTAMPING` capabilities: the `ETHTOOL_GET_TS_INFO` command of the
//! `SIOCETHTOOL` ioctl, as `ethtool -T <iface>` asks it. Needs no privilege, changes nothing.
//!
//! `libc` has neither the request number nor the command's struct, so both are written out here
//! from the kernel's UAPI headers (stable ABI):
//!
//! - `SIOCETHTOOL = 0x8946`: `include/uapi/linux/sockios.h`;
//! - `ETHTOOL_GET_TS_INFO = 0x00000041`: `include/uapi/linux/ethtool.h`;
//! - `struct ethtool_ts_info` (`include/uapi/linux/ethtool.h`, since Linux 3.5), eleven `__u32`
//!   words, no padding:
//!
//! ```text
//! offset  field
//!      0  __u32 cmd;               ETHTOOL_GET_TS_INFO
//!      4  __u32 so_timestamping;   SOF_TIMESTAMPING_* the device supports
//!      8  __s32 phc_index;         its PTP hardware clock, /dev/ptpN (-1: none)
//!     12  __u32 tx_types;          1 << HWTSTAMP_TX_* supported
//!     16  __u32 tx_reserved[3];
//!     28  __u32 rx_filters;        1 << HWTSTAMP_FILTER_* supported
//!     32  __u32 rx_reserved[3];
//!     44  (end)
//! ```
//!
//! The ioctl takes a `struct ifreq` (`include/uapi/linux/if.h`) whose `ifr_data` points at that
//! struct; `libc::ifreq` is that layout. A device whose driver has no `get_ts_info` gets the
//! kernel's default answer (software stamps, no PHC: `ethtool_get_ts_info` in
//! `net/ethtool/ioctl.c`), so every interface has an answer.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `SIOCETHTOOL` (`include/uapi/linux/sockios.h`).
const SIOCETHTOOL: libc::c_ulong = 0x8946;
/// `ETHTOOL_GET_TS_INFO` (`include/uapi/linux/ethtool.h`).
const ETHTOOL_GET_TS_INFO: u32 = 0x41;

/// `struct ethtool_ts_info`, field for field (see the module doc).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct EthtoolTsInfo {
    cmd: u32,
    so_timestamping: u32,
    phc_index: i32,
    tx_types: u32,
    tx_reserved: [u32; 3],
    rx_filters: u32,
    rx_reserved: [u32; 3],
}

const _: () = assert!(std::mem::size_of::<EthtoolTsInfo>() == 44);

/// What an interface can stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TsInfo {
    /// `SOF_TIMESTAMPING_*` bits the device supports.
    pub so_timestamping: u32,
    /// Its PTP hardware clock's index (`/dev/ptp<n>`), if it has one.
    pub phc_index: Option<u32>,
    /// `1 << HWTSTAMP_TX_*` bits.
    pub tx_types: u32,
    /// `1 << HWTSTAMP_FILTER_*` bits.
    pub rx_filters: u32,
}

impl TsInfo {
    /// The NIC stamps received packets with its hardware clock (`SOF_TIMESTAMPING_RX_HARDWARE`
    /// and `SOF_TIMESTAMPING_RAW_HARDWARE`: the raw PHC time the feed reads from `ts[2]`).
    pub fn hardware_rx(&self) -> bool {
        let want = libc::SOF_TIMESTAMPING_RX_HARDWARE | libc::SOF_TIMESTAMPING_RAW_HARDWARE;
        self.so_timestamping & want == want
    }

    /// The kernel stamps received packets in software (`SOF_TIMESTAMPING_RX_SOFTWARE`).
    pub fn software_rx(&self) -> bool {
        self.so_timestamping & libc::SOF_TIMESTAMPING_RX_SOFTWARE != 0
    }
}

/// Asks the kernel what `iface` can stamp.
pub fn ts_info(iface: &str) -> io::Result<TsInfo> {
    let mut req: libc::ifreq = {
        // SAFETY: `ifreq` is plain old data (a name array and a union of plain fields and a
        // raw pointer); all zeroes is a valid value.
        unsafe { std::mem::zeroed() }
    };
    let name = iface.as_bytes();
    if name.is_empty() || name.len() >= req.ifr_name.len() || name.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{iface:?} is not an interface name"),
        ));
    }
    for (dst, &src) in req.ifr_name.iter_mut().zip(name) {
        *dst = src as libc::c_char;
    }
    let mut info = EthtoolTsInfo {
        cmd: ETHTOOL_GET_TS_INFO,
        ..EthtoolTsInfo::default()
    };
    req.ifr_ifru.ifru_data = (&mut info as *mut EthtoolTsInfo).cast();
    // SAFETY: `socket` takes only integers; the descriptor it returns is owned below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a descriptor just returned by `socket`, owned by nobody else.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: `req` is a valid `ifreq` naming the interface, its `ifr_data` points at `info`, a
    // 44-byte `ethtool_ts_info` with `cmd` set, which the kernel fills; both outlive the call.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), SIOCETHTOOL as _, &mut req) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(TsInfo {
        so_timestamping: info.so_timestamping,
        phc_index: u32::try_from(info.phc_index).ok(),
        tx_types: info.tx_types,
        rx_filters: info.rx_filters,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_answers_with_software_stamps() {
        // Every Linux host has `lo`, and the kernel answers for it without privilege.
        let lo = ts_info("lo").unwrap();
        assert!(lo.software_rx(), "{lo:?}");
        assert!(!lo.hardware_rx(), "{lo:?}");
        assert_eq!(lo.phc_index, None);
    }

    #[test]
    fn bad_names_are_errors() {
        assert!(ts_info("").is_err());
        assert!(ts_info("a-name-longer-than-ifnamsiz").is_err());
        assert!(ts_info("nosuchif0").is_err());
    }
}
