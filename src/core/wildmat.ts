// Rich Salz's wildmat and the deny-list service match (SPEC §3.1). STUB: signatures only.
/** True when the comma-separated pattern list denies `service`: the first matching pattern decides. */
export function servicesDeny(patterns: string, service: string): boolean { throw new Error(`unimplemented ${patterns} ${service}`); }
