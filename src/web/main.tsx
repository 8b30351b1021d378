/**
 * The Berth dashboard. React renders, TanStack Router routes, TanStack Query holds server
 * state; the API is reached through the client generated from its OpenAPI document.
 */
import { QueryCache, QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { RouterProvider } from "@tanstack/react-router";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { ApiError } from "./api/errors";
import { makeRouter } from "./router";
import "./styles.css";

const queryClient = new QueryClient({
  queryCache: new QueryCache({
    // A session that ended (expired, or signed out in another tab) sends you to sign in.
    onError: (error) => {
      if (error instanceof ApiError && error.status === 401) {
        queryClient.clear();
        void router.navigate({ to: "/sign-in", search: { redirect: router.state.location.href } });
      }
    },
  }),
  defaultOptions: {
    queries: {
      // Failures the person must act on (4xx) are shown at once, not retried.
      retry: (count, error) => !(error instanceof ApiError && error.status < 500) && count < 2,
    },
  },
});
const router = makeRouter(queryClient);

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <QueryClientProvider client={queryClient}>
      <RouterProvider router={router} />
    </QueryClientProvider>
  </StrictMode>,
);
