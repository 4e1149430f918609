//! IPv4 blocks and address allocation: a host gets the lowest free host address of its
//! `cidr_block`, a public IP the lowest free one of [`PUBLIC_BLOCK`]. Pure: the callers collect
//! the addresses in use from the cloud's records while they hold its lock.

use std::collections::HashSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// The block public IPs come from (TEST-NET-2, never routed).
pub const PUBLIC_BLOCK: &str = "198.51.100.0/24";

/// An IPv4 block such as `10.10.0.0/24`. Host bits given in the text are dropped, as a router
/// would: `10.10.0.7/24` is the block `10.10.0.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: u32,
    prefix: u8,
}

impl Cidr {
    fn mask(&self) -> u32 {
        if self.prefix == 0 { 0 } else { u32::MAX << (32 - self.prefix) }
    }

    /// The first and last usable host address. The network and broadcast addresses are not
    /// hosts, except in /31 (point-to-point, RFC 3021) and /32 blocks where every address is.
    fn host_range(&self) -> (u32, u32) {
        let last = self.network | !self.mask();
        if self.prefix >= 31 { (self.network, last) } else { (self.network + 1, last - 1) }
    }

    /// The lowest host address of the block that is not in `used`, or `None` when the block is
    /// full. Walks at most `used.len() + 1` addresses, so a /8 costs no more than a /24.
    pub fn lowest_free(&self, used: &HashSet<Ipv4Addr>) -> Option<Ipv4Addr> {
        let (first, last) = self.host_range();
        (first..=last).map(Ipv4Addr::from).find(|addr| !used.contains(addr))
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{text:?} is not an IPv4 CIDR block such as 10.10.0.0/24");
        let (addr, prefix) = text.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        let mut cidr = Cidr { network: 0, prefix };
        cidr.network = u32::from(addr) & cidr.mask();
        Ok(cidr)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.network), self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn used(addrs: &[&str]) -> HashSet<Ipv4Addr> {
        addrs.iter().map(|a| a.parse().unwrap()).collect()
    }

    fn cidr(text: &str) -> Cidr {
        text.parse().unwrap()
    }

    #[test]
    fn parses_and_normalises_blocks() {
        assert_eq!(cidr("10.10.0.0/24").to_string(), "10.10.0.0/24");
        assert_eq!(cidr("10.10.0.77/24").to_string(), "10.10.0.0/24");
        assert_eq!(cidr("0.0.0.0/0").to_string(), "0.0.0.0/0");
        for bad in ["10.10.0.0", "10.10.0.0/33", "10.10.0/24", "x/24", "10.10.0.0/-1", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn lowest_free_skips_network_used_and_broadcast() {
        let block = cidr("10.10.0.0/24");
        assert_eq!(block.lowest_free(&used(&[])), Some("10.10.0.1".parse().unwrap()));
        assert_eq!(block.lowest_free(&used(&["10.10.0.1", "10.10.0.2"])), Some("10.10.0.3".parse().unwrap()));
        // A freed address in the middle is given out again before higher ones.
        assert_eq!(block.lowest_free(&used(&["10.10.0.1", "10.10.0.3"])), Some("10.10.0.2".parse().unwrap()));
        // Addresses of other blocks do not count.
        assert_eq!(block.lowest_free(&used(&["10.20.0.1"])), Some("10.10.0.1".parse().unwrap()));
    }

    #[test]
    fn full_blocks_have_no_free_address() {
        let block = cidr("10.10.0.0/30");
        assert_eq!(block.lowest_free(&used(&["10.10.0.1"])), Some("10.10.0.2".parse().unwrap()));
        assert_eq!(block.lowest_free(&used(&["10.10.0.1", "10.10.0.2"])), None);
    }

    #[test]
    fn point_to_point_and_single_address_blocks_use_every_address() {
        assert_eq!(cidr("10.0.0.4/31").lowest_free(&used(&[])), Some("10.0.0.4".parse().unwrap()));
        assert_eq!(cidr("10.0.0.4/31").lowest_free(&used(&["10.0.0.4"])), Some("10.0.0.5".parse().unwrap()));
        assert_eq!(cidr("10.0.0.9/32").lowest_free(&used(&[])), Some("10.0.0.9".parse().unwrap()));
        assert_eq!(cidr("10.0.0.9/32").lowest_free(&used(&["10.0.0.9"])), None);
    }

    #[test]
    fn public_block_starts_at_one() {
        assert_eq!(cidr(PUBLIC_BLOCK).lowest_free(&used(&[])), Some("198.51.100.1".parse().unwrap()));
    }
}
