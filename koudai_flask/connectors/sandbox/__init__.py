"""Protocol-faithful local stand-ins for remote services, served on a loopback socket."""
