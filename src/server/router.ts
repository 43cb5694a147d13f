// Where a socketmap request goes, decided once per request from its map name (the first
// word, lower-cased here and nowhere else): a configured map (smmapd_map_NAME), the Cyrus
// verification, or, with smmapd_verify_maps, TEMP "Map not configured" for a name it does
// not list. The decision carries the metrics label, so the series are those of the routing.
// Without maps, a verify list or metrics the name is not even read (Cyrus ignores it).
import type { Maybe } from '../core/contract';
import { encodeNetstring } from '../core/netstring';
import { replyPayload, storeFailure } from '../core/reply';
import type { Answer } from './answers';
import { OTHER, VERIFY, VERIFY_LABEL, type Metrics } from './metrics';

/** What answers the key of a request: the Cyrus checks (CyrusAnswers), a named map (MapAnswers). */
export interface KeyAnswers {
  answer(key: Buffer): Maybe<Answer>;
}

/** The router's decision for one request: who answers it, and the metrics label it counts under. */
export interface Route {
  readonly answers: KeyAnswers;
  readonly label: number;
}

export interface RouterOptions {
  /** The Cyrus verification; its refresh() looks whether the store changed (once per batch that asks it). */
  readonly cyrus: KeyAnswers & { refresh(): void };
  /** Named directory maps by (lower-case) name; null when none is configured. */
  readonly maps?: ReadonlyMap<string, KeyAnswers> | null;
  /**
   * smmapd_verify_maps: the map names that get the Cyrus verification; null (unset): every
   * name that is not a configured map.
   */
  readonly verifyMaps?: ReadonlySet<string> | null;
  /** Told each map name answered TEMP for not being configured (the caller rate-limits the log). */
  readonly onUnconfigured?: (name: string) => void;
  /** Set when answers are counted: the labels come from its configured names. */
  readonly metrics?: Metrics | null;
}

/** The answer to a map name that is neither configured nor listed in smmapd_verify_maps. */
const UNCONFIGURED = storeFailure('Map not configured');
const UNCONFIGURED_WIRE = encodeNetstring(replyPayload(UNCONFIGURED));
const UNCONFIGURED_ANSWERS: KeyAnswers = {
  answer: (key) => ({ wire: UNCONFIGURED_WIRE, outcome: UNCONFIGURED.outcome, status: UNCONFIGURED.status, key: key.toString('latin1') }),
};

export class MapRouter {
  /** Routes made once: per map, and the Cyrus and unconfigured ones under each label. */
  private readonly maps: ReadonlyMap<string, Route> | null;
  private readonly cyrusVerify: Route;
  private readonly cyrusOther: Route;
  private readonly unconfiguredVerify: Route;
  private readonly unconfiguredOther: Route;
  private readonly verifyMaps: ReadonlySet<string> | null;
  private readonly onUnconfigured: (name: string) => void;
  /** Whether the map name matters at all. */
  private readonly byName: boolean;
  private readonly cyrus: KeyAnswers & { refresh(): void };
  /** A batch came since the Cyrus cache last looked at the store. */
  private stale = true;

  constructor(o: RouterOptions) {
    const m = o.metrics ?? null;
    const cyrus = (this.cyrus = o.cyrus);
    this.cyrusVerify = { answers: cyrus, label: VERIFY };
    this.cyrusOther = { answers: cyrus, label: OTHER };
    this.unconfiguredVerify = { answers: UNCONFIGURED_ANSWERS, label: VERIFY };
    this.unconfiguredOther = { answers: UNCONFIGURED_ANSWERS, label: OTHER };
    const maps = o.maps ?? null;
    this.maps = maps === null ? null : new Map([...maps].map(([name, a]) => [name.toLowerCase(), { answers: a, label: m ? m.labelOf(name.toLowerCase()) : 0 }]));
    this.verifyMaps = o.verifyMaps ?? null;
    this.onUnconfigured = o.onUnconfigured ?? (() => undefined);
    this.byName = this.maps !== null || this.verifyMaps !== null || m !== null;
  }

  /**
   * A batch of requests arrived: the Cyrus cache looks whether the store changed before it
   * answers the first of them it gets (a batch of map requests leaves the store alone).
   */
  newBatch(): void {
    this.stale = true;
  }

  private viaCyrus(r: Route): Route {
    if (this.stale) {
      this.stale = false;
      this.cyrus.refresh();
    }
    return r;
  }

  /** The route for a request whose map name is `request`'s bytes before `nameEnd`. */
  route(request: Buffer, nameEnd: number): Route {
    if (!this.byName) return this.viaCyrus(this.cyrusOther);
    const name = request.toString('latin1', 0, nameEnd).toLowerCase();
    const map = this.maps?.get(name);
    if (map !== undefined) return map;
    const verifyName = name === VERIFY_LABEL;
    if (this.verifyMaps !== null && !this.verifyMaps.has(name)) {
      this.onUnconfigured(name);
      return verifyName ? this.unconfiguredVerify : this.unconfiguredOther;
    }
    return this.viaCyrus(verifyName ? this.cyrusVerify : this.cyrusOther);
  }
}
