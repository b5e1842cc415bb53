//! Neighbours: the stack shares the interface's IPv4 address with the kernel, and the kernel
//! answers ARP. The stack learns next-hop MAC addresses from the kernel's neighbour table
//! (netlink) and asks the kernel to resolve missing ones.
//!
//! TODO(neigh helper).
