import { Link } from "@tanstack/react-router";
import { usePageTitle } from "../ui/title";

export function NotFound() {
  usePageTitle("Page not found");
  return (
    <main id="main" className="content narrow">
      <h1>Page not found</h1>
      <p>There is nothing at this address. It may have moved, or you may not have access to it.</p>
      <p>
        <Link to="/">Go to your projects</Link>
      </p>
    </main>
  );
}
