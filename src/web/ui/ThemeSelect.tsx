import { useId, useState } from "react";
import { applyTheme, currentTheme, type Theme } from "../theme";

export function ThemeSelect() {
  const [theme, setTheme] = useState<Theme>(currentTheme);
  const id = useId();
  return (
    <div className="theme">
      <label htmlFor={id}>Theme</label>
      <select
        id={id}
        value={theme}
        onChange={(e) => {
          const next = e.target.value as Theme;
          applyTheme(next);
          setTheme(next);
        }}
      >
        <option value="system">System</option>
        <option value="light">Light</option>
        <option value="dark">Dark</option>
      </select>
    </div>
  );
}
