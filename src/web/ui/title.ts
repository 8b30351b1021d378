import { useEffect } from "react";

/** The tab's title names the page, so tabs and screen readers tell pages apart. */
export function usePageTitle(title: string) {
  useEffect(() => {
    document.title = `${title} · Berth`;
  }, [title]);
}
