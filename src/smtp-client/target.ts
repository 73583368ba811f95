/** One MX address to connect to: what the session, the certificate check and the evidence all name. */
export interface MxTarget {
  /** MX host name (or the route's host). */
  host: string;
  address: string;
  port: number;
  /** SNI and the name the certificate must match; null for an IP-literal next hop. */
  servername: string | null;
}
