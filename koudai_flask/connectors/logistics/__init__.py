"""Logistics tracking: the Kuaidi100 adapter, the carrier table and the push callback."""
