"""VDA 5050 master control: the broker link and the parts that command robots and follow their
state (see :class:`~devices.vda5050.master.control.VdaMasterControl`)."""
