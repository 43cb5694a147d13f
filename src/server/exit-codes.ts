// Exit statuses (sysexits.h), the same in every process model; smmapd(8) EXIT STATUS lists them.

/** Normal end: the connection is over, -U/-T reached, or a signal ended the process. */
export const EX_OK = 0;
/** A bad command-line argument or --listen address, or a unix: path in use or not a socket. */
export const EX_USAGE = 64;
/** No socket to serve (Cyrus master fd 4, systemd descriptors). */
export const EX_OSERR = 71;
/** Could not start serving (address cannot be bound), workers keep failing, or a fatal internal error. */
export const EX_TEMPFAIL = 75;
/** The configuration cannot be read or holds a bad line or value. */
export const EX_CONFIG = 78;
