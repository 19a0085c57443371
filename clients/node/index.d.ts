// Types of the authgate Node client (index.js).
export type ReasonValue = string;
/** Every denial reason, e.g. `Reason.TOKEN_EXPIRED === 'token_expired'`, from the proto's enum Reason. */
export const Reason: Readonly<Record<string, ReasonValue>>;

export interface Identity {
  subject: string;
  email: string;
  roles: string[];
  provider: string;
  issuer: string;
  audiences: string[];
  expires_at: { seconds: number; nanos: number } | null;
  app_metadata: unknown;
  user_metadata: unknown;
  session_id: string;
  aal: string;
  is_anonymous: boolean;
  claims: unknown;
}

export interface ExchangeResponse {
  access_token: string;
  issued_token_type: string;
  token_type: string;
  expires_in: number;
  scopes: string[];
  key_id: string;
  identity: Identity | null;
}

export class Denied extends Error {
  /** gRPC status name, e.g. "UNAUTHENTICATED". */
  code: string;
  /** One of Reason's values, or null when the status carried no authgate reason. */
  reason: ReasonValue | null;
  /** Seconds to wait before retrying, when the server says. */
  retryAfter: number | null;
}

export interface ClientOptions {
  ca?: string;
  cert?: string;
  key?: string;
  callerToken?: string;
  timeoutMs?: number;
}

export class Client {
  constructor(addr: string, options?: ClientOptions);
  verify(request?: { token?: string; headers?: Record<string, string>; requiredRoles?: string[]; issuer?: string }): Promise<Identity>;
  exchange(request: { token: string; audience: string; scopes?: string[] }): Promise<ExchangeResponse>;
  close(): void;
}

export function expressMiddleware(client: Client, options?: { requiredRoles?: string[] }):
  (req: any, res: any, next: () => void) => void;
export function fastifyHook(client: Client, options?: { requiredRoles?: string[] }):
  (request: any, reply: any) => Promise<unknown>;
