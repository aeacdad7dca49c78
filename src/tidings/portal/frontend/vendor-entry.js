// The one module the portal's pages import (as ../vendor/portal-vendor.js):
// React, React DOM's root, React Query and htm's `html` tag bound to React,
// so the app's own modules are plain ES modules without JSX or a build step.
import htm from "htm";
import { createElement } from "react";

export {
  Fragment,
  StrictMode,
  createContext,
  createElement,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useReducer,
  useRef,
  useState,
} from "react";
export { createRoot } from "react-dom/client";
export {
  QueryClient,
  QueryClientProvider,
  useMutation,
  useQuery,
  useQueryClient,
} from "@tanstack/react-query";

/** JSX-like tagged templates: html`<${Card} title=${t}>...</${Card}>`. */
export const html = htm.bind(createElement);
