/**
 * Portico chat widget SDK 1.0.0: `window.PorticoChat`, defined by
 * `<script src="https://support.example.com/widget/portico-chat.js" defer></script>`.
 *
 * @example
 * ```ts
 * PorticoChat.init({ portal: "demo", onReady: () => console.log("chat ready") });
 * // After the company's own login, with a token its backend signed with the portal's secret:
 * const { token } = await (await fetch("/portico-token")).json();
 * await PorticoChat.sso.login(token);
 * // At the company's logout:
 * await PorticoChat.sso.logout();
 * ```
 */
declare namespace PorticoChat {
  /** What `init` takes. */
  interface InitOptions {
    /** The portal's slug, as in `https://support.example.com/portals/<slug>/`. */
    portal: string;
    /** The panel's language (`"de"`, `"en-GB"`); by default the browser's. */
    locale?: string;
    /** Called once the panel is loaded and can take `sso.login`. */
    onReady?: () => void;
  }

  /** The events `on` can follow. */
  interface Events {
    /** The support team answered (the panel may be closed). Carries no text: that stays in the panel. */
    message: { conversationId: string };
    /** The visitor is signed in (after `sso.login`). */
    login: Record<string, never>;
    /** The visitor is signed out (`sso.logout`, or the session ended). */
    logout: Record<string, never>;
  }

  /**
   * How `sso.login` and `sso.logout` fail. `code` is the server's error code:
   * `token_expired`, `token_too_old`, `bad_signature`, `token_replayed`, `invalid_token`,
   * `missing_claim`, `invalid_claim`, `unknown_key`, `method_disabled`, `rate_limited`, ... (see the
   * API's error codes), or `widget_refused` when the chat could not start on this page (its origin is
   * not in the portal's widget origins).
   *
   * @example
   * ```ts
   * try {
   *   await PorticoChat.sso.login(token);
   * } catch (error) {
   *   if ((error as PorticoChat.ChatError).code === "token_expired") { await signAgainAndRetry(); }
   * }
   * ```
   */
  interface ChatError extends Error {
    name: "PorticoChatError";
    code: string;
  }

  interface Sso {
    /**
     * Sign the visitor in with a JWT (HS256) the company's backend signed with the portal's secret
     * (claims: `email`, `iat`; optional `exp`, `jti`, `displayName`). What the visitor wrote in the
     * chat before (anonymously, or with an unverified e-mail) becomes theirs. Called before `init` has
     * finished, it waits for it.
     *
     * @example
     * ```ts
     * await PorticoChat.sso.login(await myBackend.porticoToken());
     * PorticoChat.isLoggedIn(); // true
     * ```
     */
    login(token: string): Promise<void>;
    /**
     * End the visitor's chat session at once (on every Portico server); the panel shows that the
     * visitor is signed out.
     *
     * @example
     * ```ts
     * await PorticoChat.sso.logout();
     * ```
     */
    logout(): Promise<void>;
  }
}

interface PorticoChatApi {
  /** This SDK's version. */
  readonly version: string;
  /**
   * Add the chat button and panel to the page. A second call only adds its `onReady`.
   *
   * @example
   * ```ts
   * await PorticoChat.init({ portal: "demo", locale: "de" });
   * ```
   */
  init(options: PorticoChat.InitOptions): Promise<void>;
  /** Open the panel (after `init`; before the panel is ready, it opens when it is). */
  open(): void;
  /** Close the panel. */
  close(): void;
  /** Whether the visitor is signed in to the chat (by `sso.login`, or on the portal's own pages). */
  isLoggedIn(): boolean;
  /**
   * Follow an event; returns a function that stops following it.
   *
   * @example
   * ```ts
   * const stop = PorticoChat.on("message", ({ conversationId }) => showBadge());
   * PorticoChat.on("logout", () => console.log("chat signed out"));
   * stop();
   * ```
   */
  on<E extends keyof PorticoChat.Events>(event: E, listener: (detail: PorticoChat.Events[E]) => void): () => void;
  /** Sign-in with the company's own login. */
  readonly sso: PorticoChat.Sso;
}

declare const PorticoChat: PorticoChatApi;

interface Window {
  PorticoChat: PorticoChatApi;
}
