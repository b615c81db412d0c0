//! Client order ids on the wire: the engine's `u64` ids as Binance `newClientOrderId` strings.
//!
//! The engine's client order ids are deterministic (`instrument << 48 | slot << 40 |
//! generation`), so the same number comes back in every run. Binance refuses a
//! `newClientOrderId` equal to an open order's, and a restarted process must not mistake its
//! predecessor's orders for its own, so each run writes its ids under a session tag (e.g. the
//! run's start time in ms):
//!
//! ```text
//! rm 00000mjuohs00 - 000103000000000a
//! ^^ ^^^^^^^^^^^^^ ^ ^^^^^^^^^^^^^^^^
//! |  session tag:  |  the engine's id: 16 lowercase hex digits
//! |  13 base-36    separator
//! prefix          digits (here 1767225600000, 2026-01-01 in ms)
//! ```
//!
//! 32 bytes of `[0-9a-z-]`, inside Binance's `^[\.A-Z\:/a-z0-9_-]{1,36}$`. Every `u64` tag has
//! its own 13 digits, so ids of distinct sessions never collide, and [`ClientIds::parse`] tells
//! this session's ids from an earlier session's and from foreign ones (placed by hand, by
//! another program, or Binance's own `autoclose-…` / `adl_autoclose` ids).
//!
//! `ringmaker emergency flatten` writes its orders' ids apart ([`flatten_client_id`]:
//! `rm-flat-<13 base-36 digits>-<n>`): the `-` right after `rm` is never in an engine id, so
//! [`ClientIds::parse`] reads them as foreign, whatever the session.

/// The prefix of every id written here.
const PREFIX: &[u8; 2] = b"rm";
/// Digits of the session tag (base 36): 36^13 > 2^64, so every `u64` fits.
const TAG_DIGITS: usize = 13;
/// Digits of the engine's id (hex).
const ID_DIGITS: usize = 16;
/// Where the separator is.
const SEP_AT: usize = PREFIX.len() + TAG_DIGITS;
/// The separator between the tag and the id.
const SEP: u8 = b'-';

const BASE36: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
const HEX: &[u8; 16] = b"0123456789abcdef";

/// Whose a client order id string is, by [`ClientIds::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientIdOf {
    /// This session's order: the engine's client order id.
    This(u64),
    /// Written by this scheme in another session (an earlier run): that session's engine id,
    /// which may equal one of this session's, so it must not be matched against them.
    Earlier(u64),
    /// Not written by this scheme.
    Foreign,
}

/// Writes and reads the client order id strings of one session. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientIds {
    /// `rm` + the tag's digits + `-`: what every id of this session starts with.
    head: [u8; SEP_AT + 1],
}

impl ClientIds {
    /// Length of every id string, bytes.
    pub const LEN: usize = SEP_AT + 1 + ID_DIGITS;

    /// The ids of the session `session_tag` (distinct per run: e.g. the start time in ms).
    pub fn new(session_tag: u64) -> ClientIds {
        let mut head = [0u8; SEP_AT + 1];
        head[..PREFIX.len()].copy_from_slice(PREFIX);
        let mut t = session_tag;
        for d in head[PREFIX.len()..SEP_AT].iter_mut().rev() {
            *d = BASE36[(t % 36) as usize];
            t /= 36;
        }
        head[SEP_AT] = SEP;
        ClientIds { head }
    }

    /// The session tag, as given to [`ClientIds::new`].
    pub fn session_tag(&self) -> u64 {
        // The digits were written from a u64, so they read back into one.
        read_tag(&self.head[PREFIX.len()..SEP_AT]).unwrap_or(0)
    }

    /// The id string of the engine's client order id `cid`, on the stack.
    pub fn encode(&self, cid: u64) -> [u8; ClientIds::LEN] {
        let mut out = [0u8; ClientIds::LEN];
        out[..self.head.len()].copy_from_slice(&self.head);
        for (k, d) in out[self.head.len()..].iter_mut().enumerate() {
            let shift = 4 * (ID_DIGITS - 1 - k);
            *d = HEX[((cid >> shift) & 0xf) as usize];
        }
        out
    }

    /// Appends the id string of `cid` to `out` ([`ClientIds::LEN`] bytes).
    pub fn write(&self, cid: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.encode(cid));
    }

    /// Whose the id string `s` is (any bytes: never panics).
    pub fn parse(&self, s: &[u8]) -> ClientIdOf {
        if s.len() != ClientIds::LEN || !s.starts_with(PREFIX) || s.get(SEP_AT) != Some(&SEP) {
            return ClientIdOf::Foreign;
        }
        let (head, digits) = s.split_at(SEP_AT + 1);
        if read_tag(&head[PREFIX.len()..SEP_AT]).is_none() {
            return ClientIdOf::Foreign;
        }
        let mut cid = 0u64;
        for &b in digits {
            let v = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                _ => return ClientIdOf::Foreign,
            };
            cid = (cid << 4) | u64::from(v);
        }
        // 13 lowercase digits of a u64 are its only spelling: equal bytes, equal tags.
        if head == self.head {
            ClientIdOf::This(cid)
        } else {
            ClientIdOf::Earlier(cid)
        }
    }
}

/// What every id of [`flatten_client_id`] starts with.
pub const FLATTEN_PREFIX: &str = "rm-flat-";

/// The `newClientOrderId` of the `seq`-th order of the `ringmaker emergency flatten` run tagged
/// `tag` (e.g. its start time in ms): `rm-flat-` + the tag's 13 base-36 digits + `-` + `seq`,
/// at most 27 bytes of `[0-9a-z-]`, never the shape of an engine's id (see the [module
/// docs](self)).
pub fn flatten_client_id(tag: u64, seq: u16) -> String {
    let mut digits = [0u8; TAG_DIGITS];
    let mut t = tag;
    for d in digits.iter_mut().rev() {
        *d = BASE36[(t % 36) as usize];
        t /= 36;
    }
    let mut s = String::with_capacity(FLATTEN_PREFIX.len() + TAG_DIGITS + 6);
    s.push_str(FLATTEN_PREFIX);
    s.extend(digits.iter().map(|&b| char::from(b)));
    s.push('-');
    s.push_str(&seq.to_string());
    s
}

/// The tag written as 13 lowercase base-36 digits; `None` if not such digits or over `u64`.
fn read_tag(digits: &[u8]) -> Option<u64> {
    let mut t = 0u64;
    for &b in digits {
        let v = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'z' => b - b'a' + 10,
            _ => return None,
        };
        t = t.checked_mul(36)?.checked_add(u64::from(v))?;
    }
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Binance's rule for `newClientOrderId`: `^[\.A-Z\:/a-z0-9_-]{1,36}$`.
    fn binance_valid(s: &[u8]) -> bool {
        (1..=36).contains(&s.len())
            && s.iter()
                .all(|b| b.is_ascii_alphanumeric() || b".:/_-".contains(b))
    }

    #[test]
    fn layout() {
        let ids = ClientIds::new(1_767_225_600_000);
        let s = ids.encode((1 << 48) | (3 << 40) | 10);
        assert_eq!(ClientIds::LEN, 32);
        assert_eq!(&s, b"rm00000mjuohs00-000103000000000a");
        assert_eq!(ids.session_tag(), 1_767_225_600_000);
        let mut v = b"x".to_vec();
        ids.write(42, &mut v);
        assert_eq!(&v[1..], &ids.encode(42));
        // The largest tag still has 13 digits.
        assert_eq!(
            &ClientIds::new(u64::MAX).encode(0)[..15],
            b"rm3w5e11264sgsf"
        );
        assert_eq!(
            &ClientIds::new(0).encode(u64::MAX)[..],
            b"rm0000000000000-ffffffffffffffff"
        );
    }

    #[test]
    fn parse_examples() {
        let ids = ClientIds::new(7);
        let other = ClientIds::new(8);
        assert_eq!(ids.parse(&ids.encode(5)), ClientIdOf::This(5));
        assert_eq!(ids.parse(&other.encode(5)), ClientIdOf::Earlier(5));
        for foreign in [
            &b""[..],
            b"TEST",
            b"autoclose-1568879465651",
            b"x-venue0000000000000001",
            // Upper-case digits are not what this scheme writes.
            b"rm0000000000007-000000000000000A",
            b"RM0000000000007-0000000000000005",
            // A tag over u64::MAX.
            b"rmzzzzzzzzzzzzz-0000000000000005",
            b"rm0000000000007_0000000000000005",
            b"rm0000000000007-00000000000000050",
        ] {
            assert_eq!(ids.parse(foreign), ClientIdOf::Foreign, "{foreign:?}");
        }
    }

    #[test]
    fn flatten_ids() {
        assert_eq!(
            flatten_client_id(1_767_225_600_000, 0),
            "rm-flat-00000mjuohs00-0"
        );
        assert_eq!(
            flatten_client_id(u64::MAX, u16::MAX),
            "rm-flat-3w5e11264sgsf-65535"
        );
    }

    proptest! {
        #[test]
        fn flatten_ids_are_valid_and_never_an_engines(tag: u64, seq: u16, other: u64) {
            let s = flatten_client_id(tag, seq);
            prop_assert!(binance_valid(s.as_bytes()));
            prop_assert!(s.len() <= 27);
            prop_assert_eq!(ClientIds::new(other).parse(s.as_bytes()), ClientIdOf::Foreign);
            prop_assert_eq!(ClientIds::new(tag).parse(s.as_bytes()), ClientIdOf::Foreign);
        }

        #[test]
        fn round_trip(tag: u64, cid: u64) {
            let ids = ClientIds::new(tag);
            let s = ids.encode(cid);
            prop_assert!(binance_valid(&s));
            prop_assert_eq!(ids.parse(&s), ClientIdOf::This(cid));
            prop_assert_eq!(ids.session_tag(), tag);
        }

        #[test]
        fn distinct_sessions_never_collide(a: u64, b: u64, x: u64, y: u64) {
            prop_assume!(a != b);
            let (ia, ib) = (ClientIds::new(a), ClientIds::new(b));
            prop_assert_ne!(ia.encode(x), ib.encode(y));
            prop_assert_eq!(ia.parse(&ib.encode(y)), ClientIdOf::Earlier(y));
        }

        #[test]
        fn arbitrary_bytes(tag: u64, s in proptest::collection::vec(any::<u8>(), 0..48)) {
            let ids = ClientIds::new(tag);
            match ids.parse(&s) {
                // Whatever parses as ours is exactly what this scheme writes.
                ClientIdOf::This(cid) => prop_assert_eq!(&ids.encode(cid)[..], &s[..]),
                ClientIdOf::Earlier(cid) => {
                    prop_assert_eq!(s.len(), ClientIds::LEN);
                    prop_assert_eq!(&s[16..], &ids.encode(cid)[16..]);
                    prop_assert_ne!(&s[..16], &ids.encode(cid)[..16]);
                }
                ClientIdOf::Foreign => {}
            }
        }

        #[test]
        fn one_changed_byte_is_never_the_same_order(
            tag: u64, cid: u64, at in 0usize..ClientIds::LEN, b: u8,
        ) {
            let ids = ClientIds::new(tag);
            let mut s = ids.encode(cid);
            prop_assume!(s[at] != b);
            s[at] = b;
            match ids.parse(&s) {
                ClientIdOf::This(c) => prop_assert_ne!(c, cid),
                ClientIdOf::Earlier(c) => prop_assert_eq!(c, cid),
                ClientIdOf::Foreign => {}
            }
        }
    }
}
